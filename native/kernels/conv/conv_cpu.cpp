#include "conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "../common.h"
#include "../matmul/gemm.h"

namespace dalle {

namespace {

// One im2col chunk holds at most this many floats (16 MiB) and this many pixel rows; at least
// kMinChunkRows rows so a huge K*K*Cin still gives sgemm a reasonable M.
constexpr int64_t kChunkBudgetFloats = int64_t{1} << 22;
constexpr int64_t kMaxChunkRows = 2048;
constexpr int64_t kMinChunkRows = 32;

int64_t chunk_rows(int64_t npix, int64_t cols) {
  int64_t r = std::clamp(kChunkBudgetFloats / cols, kMinChunkRows, kMaxChunkRows);
  return std::min(r, npix);
}

// col [rows, K*K*Cin]: row r is pixel p0 + r of inp [B,H,W,Cin] (pixels counted over B*H*W),
// its K*K taps in (kh, kw) order, each Cin channels; taps outside the image are zeros.
void im2col(float* col, const float* inp, int64_t p0, int64_t rows, int64_t H, int64_t W,
            int64_t Cin, int64_t K) {
  const int64_t pad = K / 2;
  const int64_t cols = K * K * Cin;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / cols);
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t p = p0 + r;
      const int64_t w = p % W, h = (p / W) % H, n = p / (W * H);
      float* dst = col + r * cols;
      for (int64_t kh = 0; kh < K; ++kh) {
        const int64_t ih = h + kh - pad;
        for (int64_t kw = 0; kw < K; ++kw, dst += Cin) {
          const int64_t iw = w + kw - pad;
          if (ih < 0 || ih >= H || iw < 0 || iw >= W)
            std::memset(dst, 0, sizeof(float) * Cin);
          else
            std::memcpy(dst, inp + ((n * H + ih) * W + iw) * Cin, sizeof(float) * Cin);
        }
      }
    }
  });
}

}  // namespace

int64_t conv2d_forward_scratch_floats(int64_t B, int64_t H, int64_t W, int64_t Cin, int64_t K) {
  if (K == 1) return 0;
  const int64_t cols = K * K * Cin;
  return chunk_rows(B * H * W, cols) * cols;
}

void conv2d_forward_cpu(float* out, const float* inp, const float* weight, const float* bias,
                        float* scratch, int64_t B, int64_t H, int64_t W, int64_t Cin, int64_t Cout,
                        int64_t K) {
  const int64_t npix = B * H * W;
  // Starting from the bias lets every product accumulate (beta = 1) instead of a second pass.
  float beta = 0.0f;
  if (bias) {
    beta = 1.0f;
    parallel_for(npix, std::max<int64_t>(1, kElementwiseGrain / Cout), [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) std::memcpy(out + p * Cout, bias, sizeof(float) * Cout);
    });
  }
  if (K == 1) {
    sgemm(false, false, npix, Cout, Cin, 1.0f, inp, Cin, weight, Cout, beta, out, Cout);
    return;
  }
  const int64_t cols = K * K * Cin;
  const int64_t chunk = chunk_rows(npix, cols);
  for (int64_t p0 = 0; p0 < npix; p0 += chunk) {
    const int64_t rows = std::min(chunk, npix - p0);
    im2col(scratch, inp, p0, rows, H, W, Cin, K);
    sgemm(false, false, rows, Cout, cols, 1.0f, scratch, cols, weight, Cout, beta,
          out + p0 * Cout, Cout);
  }
}

int64_t conv2d_backward_scratch_floats(int64_t B, int64_t H, int64_t W, int64_t Cin, int64_t Cout,
                                       int64_t K) {
  // The flipped weight, then one im2col buffer reused by the dW pass (over inp) and the dX pass
  // (over dout).
  return K * K * Cin * Cout + std::max(conv2d_forward_scratch_floats(B, H, W, Cin, K),
                                       conv2d_forward_scratch_floats(B, H, W, Cout, K));
}

int64_t conv2d_backward_weights_scratch_floats(int64_t B, int64_t H, int64_t W, int64_t Cin,
                                               int64_t K) {
  return conv2d_forward_scratch_floats(B, H, W, Cin, K);  // im2col of inp
}

void conv2d_backward_weights_cpu(float* dweight, float* dbias, const float* inp, const float* dout,
                                 float* scratch, int64_t B, int64_t H, int64_t W, int64_t Cin,
                                 int64_t Cout, int64_t K) {
  const int64_t npix = B * H * W;

  // dbias: column sums of dout [npix, Cout], in double since npix can be ~10^5 and more.
  constexpr int64_t kBlock = 64;
  parallel_for(Cout, kBlock, [&](int64_t b, int64_t e) {
    for (int64_t c0 = b; c0 < e; c0 += kBlock) {
      const int64_t nc = std::min(kBlock, e - c0);
      double acc[kBlock] = {};
      for (int64_t p = 0; p < npix; ++p) {
        const float* row = dout + p * Cout + c0;
        for (int64_t c = 0; c < nc; ++c) acc[c] += row[c];
      }
      for (int64_t c = 0; c < nc; ++c) dbias[c0 + c] = static_cast<float>(acc[c]);
    }
  });

  // dweight [K*K*Cin, Cout] = im2col(inp)^T · dout, summed over the chunks.
  float* col = scratch;
  if (K == 1) {
    sgemm(true, false, Cin, Cout, npix, 1.0f, inp, Cin, dout, Cout, 0.0f, dweight, Cout);
  } else {
    const int64_t cols = K * K * Cin;
    const int64_t chunk = chunk_rows(npix, cols);
    for (int64_t p0 = 0; p0 < npix; p0 += chunk) {
      const int64_t rows = std::min(chunk, npix - p0);
      im2col(col, inp, p0, rows, H, W, Cin, K);
      sgemm(true, false, cols, Cout, rows, 1.0f, col, cols, dout + p0 * Cout, Cout,
            p0 == 0 ? 0.0f : 1.0f, dweight, Cout);
    }
  }
}

void conv2d_backward_cpu(float* dinp, float* dweight, float* dbias, const float* inp,
                         const float* weight, const float* dout, float* scratch, int64_t B,
                         int64_t H, int64_t W, int64_t Cin, int64_t Cout, int64_t K) {
  float* wflip = scratch;
  float* col = scratch + K * K * Cin * Cout;
  conv2d_backward_weights_cpu(dweight, dbias, inp, dout, col, B, H, W, Cin, Cout, K);

  // dinp is dout convolved with the weight flipped in space and transposed in channels:
  // dinp[h,w,ci] = Σ dout[h+kh-P, w+kw-P, co] · weight[K-1-kh, K-1-kw, ci, co]. Gathering this
  // way (rather than scattering im2col columns back, col2im) needs no atomics and reuses the
  // chunked forward path.
  parallel_for(K * K * Cout, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t co = r % Cout, tap = r / Cout;
      const int64_t src_tap = K * K - 1 - tap;  // (K-1-kh, K-1-kw) flattened
      const float* src = weight + src_tap * Cin * Cout + co;
      float* dst = wflip + r * Cin;
      for (int64_t ci = 0; ci < Cin; ++ci) dst[ci] = src[ci * Cout];
    }
  });
  conv2d_forward_cpu(dinp, dout, wflip, nullptr, col, B, H, W, Cout, Cin, K);
}

namespace {

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Scratch = std::unique_ptr<float, FreeDeleter>;

Status alloc_scratch(const char* op, int64_t floats, Scratch* out) {
  if (floats == 0) return Status::Ok();
  out->reset(static_cast<float*>(std::malloc(static_cast<size_t>(floats) * sizeof(float))));
  if (!*out)
    return make_status(StatusCode::kOutOfMemory, "%s: cannot allocate %lld bytes of scratch", op,
                       static_cast<long long>(floats) * 4);
  return Status::Ok();
}

// Checks x [B,H,W,Cin] and w [K,K,Cin,Cout], K in {1,3,7}.
Status check_x_w(const OpArgs& a) {
  const TensorView& x = a.in[0];
  const TensorView& w = a.in[1];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", x, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "w", w, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "x", x, 4));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "w", w, 4));
  const int64_t K = w.shape[0];
  DALLE_CHECK_ARG(w.shape[1] == K, "%s: w must be [K, K, Cin, Cout] with a square kernel, got %s",
                  a.op, w.shape_string().c_str());
  DALLE_CHECK_ARG(K == 1 || K == 3 || K == 7,
                  "%s: kernel size K = %lld (w %s) is not supported; K must be 1, 3 or 7", a.op,
                  static_cast<long long>(K), w.shape_string().c_str());
  DALLE_CHECK_ARG(w.shape[2] == x.shape[3],
                  "%s: w %s expects Cin = %lld input channels but x %s has %lld", a.op,
                  w.shape_string().c_str(), static_cast<long long>(w.shape[2]),
                  x.shape_string().c_str(), static_cast<long long>(x.shape[3]));
  return Status::Ok();
}

Status infer_conv2d_forward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(check_x_w(a));
  const TensorView& x = a.in[0];
  const TensorView& w = a.in[1];
  const TensorView& bias = a.in[2];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "b", bias, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "b", bias, 1));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "b", bias, 0, w.shape[3]));
  a.out = {out_spec(DType::kF32, {x.shape[0], x.shape[1], x.shape[2], w.shape[3]})};
  return Status::Ok();
}

Status infer_conv2d_backward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(check_x_w(a));
  const TensorView& x = a.in[0];
  const TensorView& w = a.in[1];
  const TensorView& dy = a.in[2];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dy", dy, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "dy", dy, 4));
  for (int i = 0; i < 3; ++i) DALLE_RETURN_IF_ERROR(expect_dim(a.op, "dy", dy, i, x.shape[i]));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "dy", dy, 3, w.shape[3]));
  a.out = {out_like(x), out_like(w), out_spec(DType::kF32, {w.shape[3]})};
  return Status::Ok();
}

// conv2d_backward_weights: conv2d_backward without dx, for a layer whose input needs no gradient
// (the first layer, over the images).
Status infer_conv2d_backward_weights(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(infer_conv2d_backward(a));
  a.out.erase(a.out.begin());
  return Status::Ok();
}

// x [B,H,W,Cin] and w [K,K,Cin,Cout], as the kernels take them.
struct ConvDims {
  int64_t B, H, W, Cin, K, Cout;
};
ConvDims conv_dims(const OpArgs& a) {
  const TensorView& x = a.in[0];
  const TensorView& w = a.in[1];
  return {x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[3]};
}

Status conv2d_fwd(OpArgs& a) {
  const auto [B, H, W, Cin, K, Cout] = conv_dims(a);
  Scratch scratch;
  DALLE_RETURN_IF_ERROR(
      alloc_scratch(a.op, conv2d_forward_scratch_floats(B, H, W, Cin, K), &scratch));
  conv2d_forward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[1].f32(), a.in[2].f32(), scratch.get(), B, H,
                     W, Cin, Cout, K);
  return Status::Ok();
}

Status conv2d_bwd(OpArgs& a) {
  const auto [B, H, W, Cin, K, Cout] = conv_dims(a);
  Scratch scratch;
  DALLE_RETURN_IF_ERROR(
      alloc_scratch(a.op, conv2d_backward_scratch_floats(B, H, W, Cin, Cout, K), &scratch));
  conv2d_backward_cpu(a.out[0].f32(), a.out[1].f32(), a.out[2].f32(), a.in[0].f32(), a.in[1].f32(),
                      a.in[2].f32(), scratch.get(), B, H, W, Cin, Cout, K);
  return Status::Ok();
}

Status conv2d_bwd_weights(OpArgs& a) {
  const auto [B, H, W, Cin, K, Cout] = conv_dims(a);
  Scratch scratch;
  DALLE_RETURN_IF_ERROR(
      alloc_scratch(a.op, conv2d_backward_weights_scratch_floats(B, H, W, Cin, K), &scratch));
  conv2d_backward_weights_cpu(a.out[0].f32(), a.out[1].f32(), a.in[0].f32(), a.in[2].f32(),
                              scratch.get(), B, H, W, Cin, Cout, K);
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(conv2d_forward, {"conv2d_forward", {"x", "w", "b"}, {"y"}, {},
                                   infer_conv2d_forward, conv2d_fwd});
DALLE_REGISTER_OP(conv2d_backward, {"conv2d_backward", {"x", "w", "dy"}, {"dx", "dw", "db"}, {},
                                    infer_conv2d_backward, conv2d_bwd});

DALLE_REGISTER_OP(conv2d_backward_weights,
                  {"conv2d_backward_weights", {"x", "w", "dy"}, {"dw", "db"}, {},
                   infer_conv2d_backward_weights, conv2d_bwd_weights});

}  // namespace dalle

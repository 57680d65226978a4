#include "pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../common.h"

namespace dalle {

namespace {

// Index (0..3, row-major) of the first maximal value; a NaN beats any number so it propagates
// and the backward sends the gradient where the forward took its value from.
inline int argmax4(const float v[4]) {
  int best = 0;
  for (int k = 1; k < 4; ++k)
    if (v[k] > v[best] || (std::isnan(v[k]) && !std::isnan(v[best]))) best = k;
  return best;
}

// Runs fn(n, i, j) over the pixels of a [B, Ho, Wo, C] grid, in parallel.
template <typename F>
void for_each_pixel(int64_t B, int64_t Ho, int64_t Wo, int64_t C, F&& fn) {
  parallel_for(B * Ho * Wo, std::max<int64_t>(1, kElementwiseGrain / C), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) fn(p / (Ho * Wo), (p / Wo) % Ho, p % Wo);
  });
}

}  // namespace

void maxpool2x2_forward_cpu(float* out, const float* inp, int64_t B, int64_t H, int64_t W,
                            int64_t C) {
  const int64_t Ho = H / 2, Wo = W / 2;
  for_each_pixel(B, Ho, Wo, C, [&](int64_t n, int64_t i, int64_t j) {
    const float* a = inp + ((n * H + 2 * i) * W + 2 * j) * C;
    const float* src[4] = {a, a + C, a + W * C, a + W * C + C};
    float* o = out + ((n * Ho + i) * Wo + j) * C;
    for (int64_t c = 0; c < C; ++c) {
      const float v[4] = {src[0][c], src[1][c], src[2][c], src[3][c]};
      o[c] = v[argmax4(v)];
    }
  });
}

void maxpool2x2_backward_cpu(float* dinp, const float* inp, const float* dout, int64_t B,
                             int64_t H, int64_t W, int64_t C) {
  const int64_t Ho = H / 2, Wo = W / 2;
  // Windows are disjoint, so each task writes its own four pixels of dinp: no races.
  for_each_pixel(B, Ho, Wo, C, [&](int64_t n, int64_t i, int64_t j) {
    const int64_t off[4] = {0, C, W * C, W * C + C};
    const int64_t base = ((n * H + 2 * i) * W + 2 * j) * C;
    const float* g = dout + ((n * Ho + i) * Wo + j) * C;
    for (int k = 0; k < 4; ++k) std::memset(dinp + base + off[k], 0, sizeof(float) * C);
    for (int64_t c = 0; c < C; ++c) {
      const float v[4] = {inp[base + off[0] + c], inp[base + off[1] + c], inp[base + off[2] + c],
                          inp[base + off[3] + c]};
      dinp[base + off[argmax4(v)] + c] = g[c];
    }
  });
}

void upsample2x_forward_cpu(float* out, const float* inp, int64_t B, int64_t H, int64_t W,
                            int64_t C) {
  const int64_t Ho = 2 * H, Wo = 2 * W;
  for_each_pixel(B, H, W, C, [&](int64_t n, int64_t i, int64_t j) {
    const float* src = inp + ((n * H + i) * W + j) * C;
    float* o = out + ((n * Ho + 2 * i) * Wo + 2 * j) * C;
    for (float* dst : {o, o + C, o + Wo * C, o + Wo * C + C})
      std::memcpy(dst, src, sizeof(float) * C);
  });
}

void upsample2x_backward_cpu(float* dinp, const float* dout, int64_t B, int64_t H, int64_t W,
                             int64_t C) {
  const int64_t Ho = 2 * H, Wo = 2 * W;
  for_each_pixel(B, H, W, C, [&](int64_t n, int64_t i, int64_t j) {
    const float* g = dout + ((n * Ho + 2 * i) * Wo + 2 * j) * C;
    float* d = dinp + ((n * H + i) * W + j) * C;
    for (int64_t c = 0; c < C; ++c) d[c] = (g[c] + g[C + c]) + (g[Wo * C + c] + g[Wo * C + C + c]);
  });
}

namespace {

Status expect_nhwc(const char* op, const char* arg, const TensorView& t) {
  DALLE_RETURN_IF_ERROR(expect_dtype(op, arg, t, DType::kF32));
  return expect_rank(op, arg, t, 4);
}

Status expect_even_hw(const char* op, const char* arg, const TensorView& t) {
  DALLE_CHECK_ARG(t.shape[1] % 2 == 0 && t.shape[2] % 2 == 0,
                  "%s: %s %s must have even H and W (2x2 windows, stride 2)", op, arg,
                  t.shape_string().c_str());
  return Status::Ok();
}

// [B,H,W,C] -> [B,H/2,W/2,C]
TensorView halved(const TensorView& t) {
  return out_spec(DType::kF32, {t.shape[0], t.shape[1] / 2, t.shape[2] / 2, t.shape[3]});
}

Status infer_maxpool_forward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_nhwc(a.op, "x", a.in[0]));
  DALLE_RETURN_IF_ERROR(expect_even_hw(a.op, "x", a.in[0]));
  a.out = {halved(a.in[0])};
  return Status::Ok();
}

Status infer_maxpool_backward(OpArgs& a) {
  const TensorView& x = a.in[0];
  const TensorView& dy = a.in[1];
  DALLE_RETURN_IF_ERROR(expect_nhwc(a.op, "x", x));
  DALLE_RETURN_IF_ERROR(expect_even_hw(a.op, "x", x));
  DALLE_RETURN_IF_ERROR(expect_nhwc(a.op, "dy", dy));
  const TensorView want = halved(x);
  for (int i = 0; i < 4; ++i) DALLE_RETURN_IF_ERROR(expect_dim(a.op, "dy", dy, i, want.shape[i]));
  a.out = {out_like(x)};
  return Status::Ok();
}

Status infer_upsample_forward(OpArgs& a) {
  const TensorView& x = a.in[0];
  DALLE_RETURN_IF_ERROR(expect_nhwc(a.op, "x", x));
  a.out = {out_spec(DType::kF32, {x.shape[0], 2 * x.shape[1], 2 * x.shape[2], x.shape[3]})};
  return Status::Ok();
}

Status infer_upsample_backward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_nhwc(a.op, "dy", a.in[0]));
  DALLE_RETURN_IF_ERROR(expect_even_hw(a.op, "dy", a.in[0]));
  a.out = {halved(a.in[0])};
  return Status::Ok();
}

Status maxpool_fwd(OpArgs& a) {
  const TensorView& x = a.in[0];
  maxpool2x2_forward_cpu(a.out[0].f32(), x.f32(), x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
  return Status::Ok();
}
Status maxpool_bwd(OpArgs& a) {
  const TensorView& x = a.in[0];
  maxpool2x2_backward_cpu(a.out[0].f32(), x.f32(), a.in[1].f32(), x.shape[0], x.shape[1],
                          x.shape[2], x.shape[3]);
  return Status::Ok();
}
Status upsample_fwd(OpArgs& a) {
  const TensorView& x = a.in[0];
  upsample2x_forward_cpu(a.out[0].f32(), x.f32(), x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
  return Status::Ok();
}
Status upsample_bwd(OpArgs& a) {
  const TensorView& dx = a.out[0];
  upsample2x_backward_cpu(dx.f32(), a.in[0].f32(), dx.shape[0], dx.shape[1], dx.shape[2],
                          dx.shape[3]);
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(maxpool2x2_forward, {"maxpool2x2_forward", {"x"}, {"y"}, {},
                                       infer_maxpool_forward, maxpool_fwd});
DALLE_REGISTER_OP(maxpool2x2_backward, {"maxpool2x2_backward", {"x", "dy"}, {"dx"}, {},
                                        infer_maxpool_backward, maxpool_bwd});
DALLE_REGISTER_OP(upsample2x_forward, {"upsample2x_forward", {"x"}, {"y"}, {},
                                       infer_upsample_forward, upsample_fwd});
DALLE_REGISTER_OP(upsample2x_backward, {"upsample2x_backward", {"dy"}, {"dx"}, {},
                                        infer_upsample_backward, upsample_bwd});

}  // namespace dalle

#include "gumbel.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common.h"
#include "../random/random.h"
#include "gumbel_rows.h"

namespace dalle {

namespace {

// Rows per parallel chunk: about kElementwiseGrain floats.
int64_t row_grain(int64_t K) { return std::max<int64_t>(1, kElementwiseGrain / K); }

}  // namespace

// Every op works row by row through the kernels of gumbel_rows.h (vectorised exp and log, sums in
// double), so a row's result does not depend on the thread count.

void gumbel_softmax_forward_cpu(float* y, const float* logits, int64_t N, int64_t K, float tau,
                                uint64_t seed, uint64_t offset) {
  const float inv_tau = 1.0f / tau;
  const GumbelRowKernels& rk = gumbel_row_kernels();
  parallel_for(N, row_grain(K), [&](int64_t b, int64_t e) {
    // A block of Philox words first (element k of row n reads stream word offset + n·K + k, word
    // w being word w % 4 of Philox block w / 4), then the vector loops over it.
    constexpr int64_t kBlock = 1024;
    uint32_t words[kBlock + 8];
    for (int64_t n = b; n < e; ++n) {
      const int64_t row = n * K;
      for (int64_t k0 = 0; k0 < K; k0 += kBlock) {
        const int64_t len = std::min(kBlock, K - k0);
        const int64_t first = row + k0;
        const uint64_t word = offset + static_cast<uint64_t>(first);
        const int64_t skip = static_cast<int64_t>(word & 3);
        rk.philox_blocks(words, seed, word >> 2, (skip + len + 3) / 4);
        rk.gumbel_perturb(y + first, logits + first, words + skip, len);
      }
      rk.softmax_scaled(y + row, K, inv_tau);
    }
  });
}

void gumbel_softmax_backward_cpu(float* dlogits, const float* y, const float* dy, int64_t N, int64_t K,
                                 float tau) {
  const float inv_tau = 1.0f / tau;
  const GumbelRowKernels& rk = gumbel_row_kernels();
  parallel_for(N, row_grain(K), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) rk.gumbel_backward(dlogits + n * K, y + n * K, dy + n * K, K, inv_tau);
  });
}

// With m the row max, S = Σ e^(x-m) and T = Σ e^(x-m)·(x-m): log p_k = x_k - m - log S and
// Σ p log p = T/S - log S.

void kl_uniform_forward_cpu(float* kl, const float* logits, int64_t N, int64_t K) {
  // Per-row terms summed serially afterwards, so the result does not depend on the thread count.
  std::vector<double> rows(static_cast<size_t>(N));
  const double log_k = std::log(static_cast<double>(K));
  const GumbelRowKernels& rk = gumbel_row_kernels();
  parallel_for(N, row_grain(K), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      float m = 0.0f;
      double s = 0.0, t = 0.0;
      rk.softmax_stats(nullptr, logits + n * K, K, &m, &s, &t);
      rows[n] = t / s - std::log(s) + log_k;
    }
  });
  double total = 0.0;
  for (double r : rows) total += r;
  kl[0] = static_cast<float>(total);
}

void kl_uniform_backward_cpu(float* dlogits, const float* logits, const float* dkl, int64_t N, int64_t K) {
  // dlogits = g · p · (log p - Σ p log p), p = e/S, log p = x - m - log S: the row's e^(x-m) go
  // straight into dlogits, then dl = (g/S) · e · (x - (m + log S + Σ p log p)).
  const double g = dkl[0];
  const GumbelRowKernels& rk = gumbel_row_kernels();
  parallel_for(N, row_grain(K), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const float* l = logits + n * K;
      float* dl = dlogits + n * K;
      float m = 0.0f;
      double s = 0.0, t = 0.0;
      rk.softmax_stats(dl, l, K, &m, &s, &t);
      const double log_s = std::log(s);
      const double neg_entropy = t / s - log_s;
      rk.scaled_shift_product(dl, l, K, g / s, static_cast<double>(m) + log_s + neg_entropy);
    }
  });
}

namespace {

Status get_tau(const OpArgs& a, float* tau) {
  double t = 0.0;
  DALLE_RETURN_IF_ERROR(a.attrs.get_num(a.op, "tau", &t));
  DALLE_CHECK_ARG(t > 0.0 && t <= 3.0e38, "%s: tau must be > 0 (and a finite f32), got %g", a.op, t);
  *tau = static_cast<float>(t);
  // 1/tau must be a finite f32 too, or 0·(1/tau) would be NaN.
  DALLE_CHECK_ARG(std::isfinite(1.0f / *tau), "%s: tau %g is too small for f32", a.op, t);
  return Status::Ok();
}

Status infer_gumbel_fwd(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "logits", a.in[0], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "logits", a.in[0], 2));
  float tau = 0.0f;
  DALLE_RETURN_IF_ERROR(get_tau(a, &tau));
  uint64_t seed = 0, offset = 0;
  DALLE_RETURN_IF_ERROR(get_seed_offset(a, &seed, &offset));
  a.out = {out_like(a.in[0])};
  return Status::Ok();
}

Status infer_gumbel_bwd(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "y", a.in[0], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dy", a.in[1], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "y", a.in[0], 2));
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "y", a.in[0], "dy", a.in[1]));
  float tau = 0.0f;
  DALLE_RETURN_IF_ERROR(get_tau(a, &tau));
  a.out = {out_like(a.in[0])};
  return Status::Ok();
}

Status infer_kl_fwd(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "logits", a.in[0], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "logits", a.in[0], 2));
  a.out = {out_spec(DType::kF32, {1})};
  return Status::Ok();
}

Status infer_kl_bwd(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "logits", a.in[0], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "logits", a.in[0], 2));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dkl", a.in[1], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "dkl", a.in[1], 1));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "dkl", a.in[1], 0, 1));
  a.out = {out_like(a.in[0])};
  return Status::Ok();
}

Status gumbel_fwd(OpArgs& a) {
  float tau = 0.0f;
  uint64_t seed = 0, offset = 0;
  DALLE_RETURN_IF_ERROR(get_tau(a, &tau));
  DALLE_RETURN_IF_ERROR(get_seed_offset(a, &seed, &offset));
  gumbel_softmax_forward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[0].shape[0], a.in[0].shape[1], tau, seed,
                             offset);
  return Status::Ok();
}
Status gumbel_bwd(OpArgs& a) {
  float tau = 0.0f;
  DALLE_RETURN_IF_ERROR(get_tau(a, &tau));
  gumbel_softmax_backward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[1].f32(), a.in[0].shape[0],
                              a.in[0].shape[1], tau);
  return Status::Ok();
}
Status kl_fwd(OpArgs& a) {
  kl_uniform_forward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[0].shape[0], a.in[0].shape[1]);
  return Status::Ok();
}
Status kl_bwd(OpArgs& a) {
  kl_uniform_backward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[1].f32(), a.in[0].shape[0], a.in[0].shape[1]);
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(gumbel_softmax_forward,
                  {"gumbel_softmax_forward", {"logits"}, {"y"}, {}, infer_gumbel_fwd, gumbel_fwd});
DALLE_REGISTER_OP(gumbel_softmax_backward,
                  {"gumbel_softmax_backward", {"y", "dy"}, {"dlogits"}, {}, infer_gumbel_bwd, gumbel_bwd});
DALLE_REGISTER_OP(kl_uniform_forward, {"kl_uniform_forward", {"logits"}, {"kl"}, {}, infer_kl_fwd, kl_fwd});
DALLE_REGISTER_OP(kl_uniform_backward,
                  {"kl_uniform_backward", {"logits", "dkl"}, {"dlogits"}, {}, infer_kl_bwd, kl_bwd});

}  // namespace dalle

#include "gumbel.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common.h"
#include "../random/random.h"

namespace dalle {

namespace {

// Rows per parallel chunk: about kElementwiseGrain floats.
int64_t row_grain(int64_t K) { return std::max<int64_t>(1, kElementwiseGrain / K); }

// Softmax statistics of one row in double: max m, S = Σ e^(x-m), T = Σ e^(x-m)·(x-m); then
// log p_k = x_k - m - log S and Σ p log p = T/S - log S.
struct RowStats {
  float max;
  double sum, tsum;
};
RowStats row_stats(const float* x, int64_t K) {
  float m = x[0];
  for (int64_t k = 1; k < K; ++k) m = std::max(m, x[k]);
  double s = 0.0, t = 0.0;
  for (int64_t k = 0; k < K; ++k) {
    double d = static_cast<double>(x[k]) - m;
    double e = std::exp(d);
    s += e;
    t += e * d;
  }
  return {m, s, t};
}

}  // namespace

void gumbel_softmax_forward_cpu(float* y, const float* logits, int64_t N, int64_t K, float tau,
                                uint64_t seed, uint64_t offset) {
  const float inv_tau = 1.0f / tau;
  parallel_for(N, row_grain(K), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const float* l = logits + n * K;
      float* yr = y + n * K;
      philox_words(seed, offset, n * K, (n + 1) * K, [&](int64_t i, uint32_t w) {
        int64_t k = i - n * K;
        yr[k] = l[k] - std::log(-std::log(u32_to_unit_open(w)));
      });
      float m = yr[0];
      for (int64_t k = 1; k < K; ++k) m = std::max(m, yr[k]);
      // Subtract the max before dividing by tau: (z - m)/tau <= 0 cannot overflow for any tau > 0.
      double s = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        yr[k] = std::exp((yr[k] - m) * inv_tau);
        s += yr[k];
      }
      const float inv_s = static_cast<float>(1.0 / s);
      for (int64_t k = 0; k < K; ++k) yr[k] *= inv_s;
    }
  });
}

void gumbel_softmax_backward_cpu(float* dlogits, const float* y, const float* dy, int64_t N, int64_t K,
                                 float tau) {
  const float inv_tau = 1.0f / tau;
  parallel_for(N, row_grain(K), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const float* yr = y + n * K;
      const float* dyr = dy + n * K;
      double dot = 0.0;
      for (int64_t k = 0; k < K; ++k) dot += static_cast<double>(yr[k]) * dyr[k];
      const float d = static_cast<float>(dot);
      for (int64_t k = 0; k < K; ++k) dlogits[n * K + k] = inv_tau * yr[k] * (dyr[k] - d);
    }
  });
}

void kl_uniform_forward_cpu(float* kl, const float* logits, int64_t N, int64_t K) {
  // Per-row terms summed serially afterwards, so the result does not depend on the thread count.
  std::vector<double> rows(static_cast<size_t>(N));
  const double log_k = std::log(static_cast<double>(K));
  parallel_for(N, row_grain(K), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      RowStats st = row_stats(logits + n * K, K);
      rows[n] = st.tsum / st.sum - std::log(st.sum) + log_k;
    }
  });
  double total = 0.0;
  for (double r : rows) total += r;
  kl[0] = static_cast<float>(total);
}

void kl_uniform_backward_cpu(float* dlogits, const float* logits, const float* dkl, int64_t N, int64_t K) {
  const double g = dkl[0];
  parallel_for(N, row_grain(K), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) {
      const float* l = logits + n * K;
      RowStats st = row_stats(l, K);
      const double log_s = std::log(st.sum);
      const double neg_entropy = st.tsum / st.sum - log_s;
      for (int64_t k = 0; k < K; ++k) {
        double log_p = static_cast<double>(l[k]) - st.max - log_s;
        dlogits[n * K + k] = static_cast<float>(g * std::exp(log_p) * (log_p - neg_entropy));
      }
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

// The row kernels of gumbel_rows.h, included once by each per-SIMD-level translation unit, which
// then names the table: `const GumbelRowKernels kGumbelRowsXxx = kGumbelRowKernelsHere;`.
// Internal linkage throughout (see fastmath.h).
#pragma once
#include <cstdint>

#include "../fastmath.h"
#include "gumbel_rows.h"
#include "../../core/rng.h"

namespace dalle {
namespace {

using fastmath::kLanes;

// Philox blocks one per iteration, so GCC can vectorise across blocks; philox4x32_10 has internal
// linkage (core/rng.h), so this file's AVX copy stays its own.
void philox_blocks_impl(uint32_t* out, uint64_t seed, uint64_t first_block, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const Philox4 b = philox4x32_10(seed, first_block + static_cast<uint64_t>(i));
    for (int j = 0; j < 4; ++j) out[4 * i + j] = b.v[j];
  }
}

void gumbel_perturb_row(float* z, const float* l, const uint32_t* words, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    // u32_to_unit_open (core/rng.h), with the 23-bit integer converted as signed (exact, and a
    // vector instruction at every level).
    const float u = (static_cast<float>(static_cast<int32_t>(words[k] >> 9)) + 0.5f) * (1.0f / 8388608.0f);
    z[k] = l[k] - fastmath::log_f32(-fastmath::log_f32(u));
  }
}

void softmax_scaled_row(float* y, int64_t K, float inv_tau) {
  const float m = fastmath::max_array(y, K);
  // Subtract the max before dividing by tau: (z - m)/tau <= 0 cannot overflow for any tau > 0.
  for (int64_t k = 0; k < K; ++k) y[k] = fastmath::exp_f32((y[k] - m) * inv_tau);
  const float inv_s = static_cast<float>(1.0 / fastmath::sum_f64(y, K));
  for (int64_t k = 0; k < K; ++k) y[k] *= inv_s;
}

void gumbel_backward_row(float* dl, const float* y, const float* dy, int64_t K, float inv_tau) {
  const float d = static_cast<float>(fastmath::dot_f64(y, dy, K));
  for (int64_t k = 0; k < K; ++k) dl[k] = inv_tau * y[k] * (dy[k] - d);
}

void softmax_stats_row(float* e, const float* x, int64_t K, float* max, double* sum, double* tsum) {
  // Without e, the exponentials go through a block on the stack. Blocks are whole multiples of
  // kLanes, so element k always lands in lane k % kLanes.
  constexpr int64_t kBlock = 64 * kLanes;
  float local[kBlock];
  const float m = fastmath::max_array(x, K);
  const double md = m;
  double s_acc[kLanes] = {}, t_acc[kLanes] = {};
  double s = 0.0, t = 0.0;
  for (int64_t k0 = 0; k0 < K; k0 += kBlock) {
    const int64_t len = K - k0 < kBlock ? K - k0 : kBlock;
    const float* xb = x + k0;
    float* eb = e ? e + k0 : local;
    for (int64_t k = 0; k < len; ++k) eb[k] = fastmath::exp_sub_f32(xb[k], m);
    int64_t k = 0;
    for (; k + kLanes <= len; k += kLanes)
      for (int j = 0; j < kLanes; ++j) {
        const double ev = eb[k + j];
        s_acc[j] += ev;
        t_acc[j] += ev * (static_cast<double>(xb[k + j]) - md);
      }
    for (; k < len; ++k) {  // only in the last block
      const double ev = eb[k];
      s += ev;
      t += ev * (static_cast<double>(xb[k]) - md);
    }
  }
  double s_lanes = 0.0, t_lanes = 0.0;
  for (int j = 0; j < kLanes; ++j) {
    s_lanes += s_acc[j];
    t_lanes += t_acc[j];
  }
  *max = m;
  *sum = s_lanes + s;
  *tsum = t_lanes + t;
}

void scaled_shift_product_row(float* dl, const float* x, int64_t K, double scale, double shift) {
  for (int64_t k = 0; k < K; ++k)
    dl[k] = static_cast<float>(scale * static_cast<double>(dl[k]) * (static_cast<double>(x[k]) - shift));
}

constexpr GumbelRowKernels kGumbelRowKernelsHere = {philox_blocks_impl, gumbel_perturb_row, softmax_scaled_row, gumbel_backward_row,
                                                    softmax_stats_row, scaled_shift_product_row};

}  // namespace
}  // namespace dalle

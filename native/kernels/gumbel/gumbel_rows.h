// Per-row kernels of the Gumbel-softmax and KL ops, compiled once per SIMD level
// (gumbel_rows.cpp, gumbel_rows_avx2.cpp, gumbel_rows_avx512.cpp, all from gumbel_rows_impl.h)
// and picked by active_simd_level(). Each works on one row of K floats, so a row's result does
// not depend on how rows are split across threads; sums use fixed lanes, so neither does it depend
// on the SIMD level beyond the last bits of exp/log (and FMA contraction in the AVX builds).
#pragma once
#include <cstdint>

namespace dalle {

struct GumbelRowKernels {
  // out [4·nb]: Philox4x32-10 blocks first_block .. first_block + nb - 1 of the stream keyed by
  // seed, each as its four words: the same function as philox4x32_10 in core/rng.h, in a form
  // that vectorises across blocks.
  void (*philox_blocks)(uint32_t* out, uint64_t seed, uint64_t first_block, int64_t nb);
  // z [n] = l + g, g[k] = -log(-log(u32_to_unit_open(words[k]))): the Gumbel perturbation.
  void (*gumbel_perturb)(float* z, const float* l, const uint32_t* words, int64_t n);
  // y [K] = softmax(y · inv_tau), in place (the max subtracted first).
  void (*softmax_scaled)(float* y, int64_t K, float inv_tau);
  // dl [K] = inv_tau · y · (dy - Σ y·dy), the sum in double.
  void (*gumbel_backward)(float* dl, const float* y, const float* dy, int64_t K, float inv_tau);
  // Softmax statistics of x [K]: *m = max, *sum = Σ e, *tsum = Σ e·(x - m) with e = exp(x - m)
  // (sums in double); e [K] also written out unless null.
  void (*softmax_stats)(float* e, const float* x, int64_t K, float* m, double* sum, double* tsum);
  // dl [K], holding e from softmax_stats on entry: dl[k] = scale · e[k] · (x[k] - shift), in double.
  void (*scaled_shift_product)(float* dl, const float* x, int64_t K, double scale, double shift);
};

extern const GumbelRowKernels kGumbelRowsScalar;
extern const GumbelRowKernels kGumbelRowsAvx2;
extern const GumbelRowKernels kGumbelRowsAvx512;

// The table for active_simd_level().
const GumbelRowKernels& gumbel_row_kernels();

}  // namespace dalle

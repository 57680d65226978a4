// Bias add and scaled residual add: the cheap glue around every linear layer and resblock.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../common.h"

namespace dalle {

// out[r, c] = inp[r, c] + bias[c]; inp, out [rows, C], bias [C]. out may alias inp.
void bias_add_forward_cpu(float* out, const float* inp, const float* bias, int64_t rows, int64_t C);
// dbias[c] = Σ_r dout[r, c]; dout [rows, C]. The input gradient is dout itself.
void bias_add_backward_cpu(float* dbias, const float* dout, int64_t rows, int64_t C);

// out = inp + scale·res, all [n]. out may alias inp.
void residual_forward_cpu(float* out, const float* inp, const float* res, float scale, int64_t n);
// dinp = dout, dres = scale·dout, all [n].
void residual_backward_cpu(float* dinp, float* dres, const float* dout, float scale, int64_t n);

// Column sums for the backward passes that reduce over rows (bias, LayerNorm gains), made
// deterministic: the rows are cut into blocks whose number depends only on `rows`, never on the
// thread count; each block sums in f32 and the blocks are combined in order in double, so results
// are bit-identical from run to run whatever the scheduling.
//   out[k][c] = Σ_r term_k(r, c), k < nsums. fill(r0, r1, partial) adds the terms of rows [r0, r1)
//   into partial[k·C + c] (partial arrives zeroed); it may also write per-row outputs (dx).
template <typename Fill>
void blocked_column_sums(int64_t rows, int64_t C, int nsums, float* const* out, Fill&& fill) {
  // 64 blocks keep every core busy while the scratch stays at 64·nsums·C floats.
  constexpr int64_t kMaxBlocks = 64;
  const int64_t nblocks = std::min<int64_t>(rows, kMaxBlocks);
  const int64_t per = (rows + nblocks - 1) / nblocks;
  const int64_t stride = static_cast<int64_t>(nsums) * C;
  std::vector<float> partial(static_cast<size_t>(nblocks * stride), 0.0f);
  parallel_for(nblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * per, r1 = std::min(rows, r0 + per);
      if (r0 < r1) fill(r0, r1, partial.data() + b * stride);
    }
  });
  parallel_for(stride, 1024, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      double s = 0.0;
      for (int64_t b = 0; b < nblocks; ++b) s += partial[static_cast<size_t>(b * stride + i)];
      out[i / C][i % C] = static_cast<float>(s);
    }
  });
}

}  // namespace dalle

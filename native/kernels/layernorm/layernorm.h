// LayerNorm over the last dimension (pre-LN transformer blocks and the final LN before the head).
//
// C = 1 is allowed: the row minus its mean is exactly 0, so y = bias, rstd = 1/√eps, and every
// gradient but dbias (= Σ dy) is 0. That is the mathematically exact answer, not a special case.
#pragma once
#include <cstdint>

namespace dalle {

// out[r, :] = (inp[r, :] − mean[r]) · rstd[r] · weight + bias, rstd = 1/√(var + eps), var biased.
// inp, out [rows, C]; weight, bias [C]; mean, rstd [rows] (saved for the backward pass).
void layernorm_forward_cpu(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                           const float* bias, int64_t rows, int64_t C, float eps);
// dinp [rows, C], dweight [C], dbias [C] (overwritten, not accumulated), from inp [rows, C],
// weight [C], mean, rstd [rows], dout [rows, C].
void layernorm_backward_cpu(float* dinp, float* dweight, float* dbias, const float* inp,
                            const float* weight, const float* mean, const float* rstd,
                            const float* dout, int64_t rows, int64_t C);

}  // namespace dalle

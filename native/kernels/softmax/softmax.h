// Softmax over the last dimension.
#pragma once
#include <cstdint>

namespace dalle {

// out[r, :] = exp(inp[r, :] − max_r) / Σ exp(inp[r, :] − max_r); inp, out [rows, C].
// −inf entries get probability 0, and a row that is −inf everywhere (fully masked) gives all
// zeros rather than 0/0 = NaN.
void softmax_forward_cpu(float* out, const float* inp, int64_t rows, int64_t C);
// dinp[r, :] = y[r, :] · (dout[r, :] − Σ_c y[r, c]·dout[r, c]); y, dout, dinp [rows, C].
void softmax_backward_cpu(float* dinp, const float* y, const float* dout, int64_t rows, int64_t C);

}  // namespace dalle

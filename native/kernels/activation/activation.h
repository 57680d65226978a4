// Pointwise activations used by the transformer MLP (GELU) and the dVAE blocks (ReLU).
#pragma once
#include <cstdint>

namespace dalle {

// GELU, tanh approximation (GPT-2, Sparse Transformer, DALL·E): 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
void gelu_forward_cpu(float* out, const float* inp, int64_t n);
// dinp = dout · gelu'(inp)
void gelu_backward_cpu(float* dinp, const float* inp, const float* dout, int64_t n);

void relu_forward_cpu(float* out, const float* inp, int64_t n);
// dinp = dout where inp > 0, else 0 (the subgradient at 0 is taken as 0).
void relu_backward_cpu(float* dinp, const float* inp, const float* dout, int64_t n);

}  // namespace dalle

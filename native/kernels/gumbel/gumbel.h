// The dVAE relaxation (DALLE-SPEC §4): soft Gumbel-softmax in both passes (no straight-through)
// and the KL to the uniform prior, computed from the noise-free logits.
#pragma once
#include <cstdint>

namespace dalle {

// y, logits [N, K]. y[n] = softmax((logits[n] + g[n]) / tau), g[n, k] = -log(-log(u)),
// u = philox_uniform(seed, offset + n·K + k): the noise is a fixed function of (seed, offset), so
// the backward needs only y.
void gumbel_softmax_forward_cpu(float* y, const float* logits, int64_t N, int64_t K, float tau,
                                uint64_t seed, uint64_t offset);
// dlogits, y, dy [N, K]. dlogits = (1/tau) · y · (dy - Σ_k y·dy)
void gumbel_softmax_backward_cpu(float* dlogits, const float* y, const float* dy, int64_t N, int64_t K,
                                 float tau);

// kl [1], logits [N, K]. kl = Σ_n KL(softmax(logits[n]) || Uniform(K)) = Σ_n (Σ_k p log p + log K).
void kl_uniform_forward_cpu(float* kl, const float* logits, int64_t N, int64_t K);
// dlogits, logits [N, K], dkl [1]. dlogits = dkl · p · (log p - Σ_k p log p), p = softmax(logits[n]).
void kl_uniform_backward_cpu(float* dlogits, const float* logits, const float* dkl, int64_t N, int64_t K);

}  // namespace dalle

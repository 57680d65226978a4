// The optimizer step and gradient-norm clipping. Gradients live in one arena, so a single flat
// tensor can be the whole model's gradient (or parameters, or moments).
#pragma once
#include <cstdint>

namespace dalle {

// param, grad, m, v [n]; param, m, v updated in place. AdamW as Loshchilov & Hutter and
// torch.optim.AdamW, step t >= 1:
//   p -= lr·wd·p                      (decoupled weight decay, before the Adam update)
//   m = β1·m + (1-β1)·g,  v = β2·v + (1-β2)·g²
//   p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
void adamw_step_cpu(float* param, const float* grad, float* m, float* v, int64_t n, double lr, double beta1,
                    double beta2, double eps, double weight_decay, int64_t step);

// Σ x², accumulated in double over fixed blocks, so the result does not depend on the thread count.
double sum_squares_cpu(const float* x, int64_t n);

// x [n] scaled in place by max_norm/(norm + 1e-6) when norm = ||x||₂ > max_norm; returns norm.
// A non-finite norm leaves x untouched, so the caller can see the overflow and skip the step.
double clip_grad_norm_cpu(float* x, int64_t n, double max_norm);

// ema, param [n]; ema updated in place: ema = decay·ema + (1 − decay)·param, each element in double
// and rounded once to f32 (decay 1 keeps ema, decay 0 copies param, bit for bit).
void ema_update_cpu(float* ema, const float* param, int64_t n, double decay);

}  // namespace dalle

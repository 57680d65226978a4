// The spans of gelu_rows.h, included once by each per-SIMD-level translation unit, which then names
// the table: `const GeluKernels kGeluXxx = kGeluKernelsHere;`. Internal linkage (see fastmath.h).
#pragma once
#include <cstdint>

#include "../fastmath.h"
#include "gelu_rows.h"

namespace dalle {
namespace {

constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluCube = 0.044715f;

// sigmoid(2u) = 1 / (1 + exp(-2u)); exp overflows to +inf for very negative x, giving s = 0.
inline float gelu_gate(float x) {
  const float u = kGeluScale * (x + kGeluCube * x * x * x);
  return 1.0f / (1.0f + fastmath::exp_f32(-2.0f * u));
}

void gelu_forward_span(float* out, const float* inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] * gelu_gate(inp[i]);
}

void gelu_backward_span(float* dinp, const float* inp, const float* dout, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = inp[i];
    const float s = gelu_gate(x);
    dinp[i] = dout[i] * (s + 2.0f * x * s * (1.0f - s) * kGeluScale * (1.0f + 3.0f * kGeluCube * x * x));
  }
}

constexpr GeluKernels kGeluKernelsHere = {gelu_forward_span, gelu_backward_span};

}  // namespace
}  // namespace dalle

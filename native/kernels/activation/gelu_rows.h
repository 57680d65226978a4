// GELU (tanh form) over a span, compiled once per SIMD level (gelu_rows.cpp, gelu_rows_avx2.cpp,
// gelu_rows_avx512.cpp, all from gelu_rows_impl.h) and picked by active_simd_level(). std::tanh
// does not vectorise; 0.5·(1 + tanh(u)) = sigmoid(2u) does, over fastmath's exp, and GELU was half
// of a small transformer's training step with the scalar loop.
#pragma once
#include <cstdint>

namespace dalle {

struct GeluKernels {
  // out[i] = x·sigmoid(2u), u = √(2/π)·(x + 0.044715·x³).
  void (*forward)(float* out, const float* inp, int64_t n);
  // dinp[i] = dout[i]·(s + 2·x·s·(1 − s)·√(2/π)·(1 + 3·0.044715·x²)), s = sigmoid(2u).
  void (*backward)(float* dinp, const float* inp, const float* dout, int64_t n);
};

extern const GeluKernels kGeluScalar;
extern const GeluKernels kGeluAvx2;
extern const GeluKernels kGeluAvx512;

const GeluKernels& gelu_kernels();

}  // namespace dalle

// Helpers shared by kernel files: output specs for shape inference and the CPU thread pool.
#pragma once
#include <cstdint>

#include "../core/registry.h"
#include "../core/tensor.h"
#include "../core/threadpool.h"

namespace dalle {

// An output spec (no data) with the given dtype and shape.
inline TensorView out_spec(DType dtype, const int64_t* shape, int ndim) {
  return make_view(nullptr, dtype, Device::kCPU, shape, ndim);
}
inline TensorView out_spec(DType dtype, std::initializer_list<int64_t> shape) {
  return make_view(nullptr, dtype, Device::kCPU, shape);
}
inline TensorView out_like(const TensorView& t) { return out_spec(t.dtype, t.shape, t.ndim); }
inline TensorView out_like(const TensorView& t, DType dtype) { return out_spec(dtype, t.shape, t.ndim); }

// All but the last dim folded: [..., C] -> rows.
inline int64_t leading_rows(const TensorView& t) { return t.numel() / t.shape[t.ndim - 1]; }

// Parallel loop over [0, n) on the global pool; grain is the smallest chunk worth a thread.
template <typename F>
inline void parallel_for(int64_t n, int64_t grain, F&& fn) {
  ThreadPool::global().parallel_for(n, grain, fn);
}

// Elementwise loops split in chunks of this many floats (fits L2, amortises wake-up).
constexpr int64_t kElementwiseGrain = 1 << 14;

}  // namespace dalle

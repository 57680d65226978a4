// Helpers for the self-test cases: device buffers with RAII and comparisons that say where a
// result went wrong. Cases use cudaMalloc/cudaMemcpy directly (not the op allocator) so that each
// buffer has exactly the bytes it asks for, which the emulator's guard bytes then fence.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <cstdio>
#include <string>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../../core/selftest.h"
#include "../device.h"

namespace dalle {
namespace cuda {
namespace selftest {

template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (ptr_) (void)cudaFree(ptr_);
  }
  Status alloc(size_t n) {
    n_ = n;
    DALLE_RETURN_IF_ERROR(check(cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T)), "cudaMalloc"));
    return check(cudaMemset(ptr_, 0, n * sizeof(T)), "cudaMemset");
  }
  Status upload(const std::vector<T>& host) {
    n_ = host.size();
    DALLE_RETURN_IF_ERROR(check(cudaMalloc(reinterpret_cast<void**>(&ptr_), n_ * sizeof(T)), "cudaMalloc"));
    return check(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  Status download(std::vector<T>* host) const {
    host->resize(n_);
    return check(cudaMemcpy(host->data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
  }
  T* get() const { return ptr_; }
  size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

// Deterministic inputs: a small LCG, so a failure reproduces without a printed seed.
inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = lo + (hi - lo) * static_cast<float>(seed >> 8) / 16777216.0f;
  }
  return v;
}

// Ok if |got - want| <= atol + rtol·|want| everywhere; else the first element that is not.
template <typename T, typename U>
Status compare(const char* what, const std::vector<T>& got, const std::vector<U>& want, double atol, double rtol,
               std::string* info) {
  if (got.size() != want.size())
    return make_status(StatusCode::kInternal, "%s: %zu results, want %zu", what, got.size(), want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    double err = std::fabs(g - w);
    if (!(err <= atol + rtol * std::fabs(w)))
      return make_status(StatusCode::kInternal, "%s: element %zu is %.9g, want %.9g", what, i, g, w);
    if (err > worst) worst = err;
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s%s: %zu values, max |error| %.3g", info->empty() ? "" : "; ", what, got.size(),
                worst);
  *info += buf;
  return Status::Ok();
}

}  // namespace selftest
}  // namespace cuda
}  // namespace dalle

// Kernel launches, spelled the same for nvcc and for the emulated device:
//
//   return cuda::launch<gelu_forward_kernel>(a.op, grid, block, smem_bytes, out, in, n);
//
// enqueues Kernel<<<grid, block, smem_bytes, cuda::stream()>>>(args...) under nvcc; in the emulated
// build (DALLE_CUDA=EMULATE) it runs the grid on the CPU. Either way the result is the launch's
// Status, naming the op and the kernel. More than 48 KiB of dynamic shared memory is requested
// from the driver first (cudaFuncAttributeMaxDynamicSharedMemorySize), as sm_90 requires.
#pragma once
#include <atomic>
#include <string>
#include <utility>

#include "../core/status.h"

namespace dalle {
namespace cuda {

// "Kernel = ns::{anonymous}::foo<float>" out of a __PRETTY_FUNCTION__, as "foo<float>".
std::string kernel_name_from_signature(const char* pretty);

template <auto Kernel>
const char* kernel_name() {
  static const std::string name = kernel_name_from_signature(__PRETTY_FUNCTION__);
  return name.c_str();
}

Status launch_error(cudaError_t err, const char* op, const char* kernel);

constexpr size_t kDefaultDynamicSmem = 48 * 1024;

#if defined(__CUDACC__) || DALLE_CUDA_EMULATED
template <auto Kernel, typename... Args>
Status launch(const char* op, dim3 grid, dim3 block, size_t smem_bytes, Args&&... args) {
  if (smem_bytes > kDefaultDynamicSmem) {
    static std::atomic<size_t> allowed{kDefaultDynamicSmem};
    if (smem_bytes > allowed.load()) {
      cudaError_t err = cudaFuncSetAttribute(reinterpret_cast<const void*>(Kernel),
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem_bytes));
      if (err != cudaSuccess) return launch_error(err, op, kernel_name<Kernel>());
      allowed = smem_bytes;
    }
  }
#if DALLE_CUDA_EMULATED
  cudaError_t err = emu::launch(kernel_name<Kernel>(), Kernel, grid, block, smem_bytes, stream(), std::forward<Args>(args)...);
#else
  Kernel<<<grid, block, smem_bytes, stream()>>>(std::forward<Args>(args)...);
  cudaError_t err = cudaGetLastError();
#endif
  return err == cudaSuccess ? Status::Ok() : launch_error(err, op, kernel_name<Kernel>());
}
#endif

}  // namespace cuda
}  // namespace dalle

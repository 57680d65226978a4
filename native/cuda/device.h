// The CUDA backend's shared pieces for kernel files (*_cuda.cu) and native/cuda itself: the
// process's one stream, CUDA error -> Status, and launch-size helpers.
//
// Synchronisation rule. Every op enqueues its work on stream() and returns without waiting, so
// consecutive ops overlap with the host. Memory allocated by the device allocator is handed out
// in stream order (a block freed after an op was enqueued is only reused by work enqueued later
// on the same stream), so no op ever waits for another. The host sees results only through a
// copy to host memory (TensorHandle.read, Tensor.to('cpu')), and every copy that touches host
// memory synchronises the stream before returning; a failed kernel therefore surfaces at the
// latest there, as E_CUDA. Code that adds a second stream must make it wait on this one (events)
// before touching tensors this one wrote.
//
// Kernel files include this one header: in the emulated build (DALLE_CUDA=EMULATE, g++ instead of
// nvcc) it brings in the emulated device's builtins first; launch.h and warp.h are the launch and
// the inline-PTX helpers both builds understand.
#pragma once
#if DALLE_CUDA_EMULATED
#include "emu/emu.h"
#endif
#include <cuda_runtime_api.h>

#include <cstdint>

#include "../core/status.h"

namespace dalle {
namespace cuda {

// The stream every op and copy uses, created on first use (so loading the addon on a GPU
// machine creates no CUDA context until CUDA is used). If it cannot be created, the legacy
// default stream is returned and the CUDA call that follows reports why.
cudaStream_t stream();

// Ok for cudaSuccess, else kCudaError "<what>: <cudaGetErrorString>". Clears the runtime's
// last-error slot for non-sticky errors so one failure is not reported twice.
Status check(cudaError_t err, const char* what);

// Returns the device allocator's cached free blocks to the driver (the allocator also does this
// by itself before reporting out-of-memory).
void empty_cache();

// Threads per block for elementwise kernels, and a grid for n items that a grid-stride loop
// covers (capped so huge tensors loop rather than ask for absurd grids).
constexpr int kBlock = 256;
inline unsigned grid_for(int64_t n, int block = kBlock) {
  int64_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  if (g > 65536) g = 65536;
  return static_cast<unsigned>(g);
}

}  // namespace cuda
}  // namespace dalle

#include "launch.h"
#include "warp.h"

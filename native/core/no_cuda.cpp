// Linked instead of native/cuda when the build has no CUDA backend.
#include "backend.h"

namespace dalle {

CudaInfo cuda_info() {
  CudaInfo info;
  info.error = "this binary was built without the CUDA backend (DALLE_CUDA=OFF or no nvcc)";
  return info;
}

void cuda_init() {}

}  // namespace dalle

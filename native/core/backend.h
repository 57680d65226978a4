// What this build and machine can do, for buildInfo() and the loader's diagnostics.
#pragma once
#include <string>

namespace dalle {

struct CudaInfo {
  bool compiled = false;   // the CUDA backend is in this binary
  int device_count = 0;    // usable devices found at load (0 when none or no driver)
  std::string device_name; // device 0
  std::string error;       // why no device is usable, when none is
  bool cublaslt = false;   // libcublasLt could be opened at run time
  bool emulated = false;   // the device is the emulated one (DALLE_CUDA=EMULATE): kernels run on the CPU
};

// Implemented by native/cuda when compiled, else by native/core/no_cuda.cpp.
CudaInfo cuda_info();
// Sets up the device allocator; harmless to call more than once.
void cuda_init();

enum class SimdLevel { kScalar = 0, kAvx2Fma = 1, kAvx512 = 2 };
SimdLevel cpu_simd_level();        // best the CPU supports, detected once
const char* simd_level_name(SimdLevel level);
// Lower the level kernels use (for tests and benchmarks of each path); clamps to what the CPU has.
void set_simd_level_override(int level);  // -1 clears the override
SimdLevel active_simd_level();

}  // namespace dalle

// gelu_rows_impl.h for the baseline x86-64 (SSE2), and the dispatch.
#include "gelu_rows_impl.h"

#include "../../core/backend.h"

namespace dalle {

const GeluKernels kGeluScalar = kGeluKernelsHere;

const GeluKernels& gelu_kernels() {
  switch (active_simd_level()) {
    case SimdLevel::kAvx512:
      return kGeluAvx512;
    case SimdLevel::kAvx2Fma:
      return kGeluAvx2;
    default:
      return kGeluScalar;
  }
}

}  // namespace dalle

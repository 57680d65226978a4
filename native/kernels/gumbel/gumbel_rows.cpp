// gumbel_rows_impl.h for the baseline x86-64 (SSE2), and the dispatch.
#include "gumbel_rows_impl.h"

#include "../../core/backend.h"

namespace dalle {

const GumbelRowKernels kGumbelRowsScalar = kGumbelRowKernelsHere;

const GumbelRowKernels& gumbel_row_kernels() {
  switch (active_simd_level()) {
    case SimdLevel::kAvx512:
      return kGumbelRowsAvx512;
    case SimdLevel::kAvx2Fma:
      return kGumbelRowsAvx2;
    default:
      return kGumbelRowsScalar;
  }
}

}  // namespace dalle

// gelu_rows_impl.h compiled with AVX-512 (CMakeLists.txt: the _avx512.cpp suffix).
#include "gelu_rows_impl.h"

namespace dalle {
const GeluKernels kGeluAvx512 = kGeluKernelsHere;
}  // namespace dalle

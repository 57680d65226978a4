// gelu_rows_impl.h compiled with -mavx2 -mfma (CMakeLists.txt: the _avx2.cpp suffix).
#include "gelu_rows_impl.h"

namespace dalle {
const GeluKernels kGeluAvx2 = kGeluKernelsHere;
}  // namespace dalle

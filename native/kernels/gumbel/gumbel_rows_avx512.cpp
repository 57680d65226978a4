// gumbel_rows_impl.h compiled with AVX-512 (CMakeLists.txt: the _avx512.cpp suffix).
#include "gumbel_rows_impl.h"

namespace dalle {
const GumbelRowKernels kGumbelRowsAvx512 = kGumbelRowKernelsHere;
}  // namespace dalle

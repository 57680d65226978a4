// gumbel_rows_impl.h compiled with -mavx2 -mfma (CMakeLists.txt: the _avx2.cpp suffix).
#include "gumbel_rows_impl.h"

namespace dalle {
const GumbelRowKernels kGumbelRowsAvx2 = kGumbelRowKernelsHere;
}  // namespace dalle

// Internals of the CPU sgemm (gemm.cpp): the register-blocked micro-kernels, one per SIMD level,
// and the knobs the benchmark uses to tune the cache blocking. Not for other kernels: they call
// sgemm / sgemm_batched from gemm.h.
//
// Packed layouts (what the micro-kernels read), GotoBLAS/BLIS style:
//   A panel: MR rows of op(A) × kc, stored k-major:  ap[p·MR + i] = op(A)[i0 + i, p0 + p]
//   B panel: kc × NR columns of op(B), k-major:      bp[p·NR + j] = op(B)[p0 + p, j0 + j]
// Rows/columns past the matrix edge are zero in the panel, so a micro-kernel always computes a
// full MR×NR tile and only its stores are clipped to m×n.
#pragma once
#include <cstdint>

namespace dalle {
namespace gemm {

// c[i, j] (row stride ldc, i < m ≤ MR, j < n ≤ NR)
//   = alpha · Σ_p ap[p·MR + i] · bp[p·NR + j] + beta · c[i, j];
// beta == 0 does not read c. kc ≥ 1. bp is 64-byte aligned.
using MicroKernel = void (*)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                             float alpha, float beta, int64_t m, int64_t n);

// Packing of one panel: `a` points at op(A)[i0, p0] (A itself, or A stored transposed), rows
// [0, mr) × depth [0, kc) go to dst as an MR-row panel, rows mr..MR-1 as zeros; likewise `b` at
// op(B)[p0, j0], columns [0, nr), into an NR-column panel (B's dst is 64-byte aligned; A's need
// not be).
using PackA = void (*)(bool trans_a, const float* a, int64_t lda, int64_t mr, int64_t kc,
                       float* dst);
using PackB = void (*)(bool trans_b, const float* b, int64_t ldb, int64_t nr, int64_t kc,
                       float* dst);

// Compiled for their instruction set (gemm_avx512.cpp, gemm_avx2.cpp); call only when
// active_simd_level() allows it. The packers transpose in registers where the source is
// strided.
constexpr int kAvx512MR = 14, kAvx512NR = 32;
void microkernel_avx512(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                        float alpha, float beta, int64_t m, int64_t n);
void pack_a_avx512(bool trans_a, const float* a, int64_t lda, int64_t mr, int64_t kc, float* dst);
void pack_b_avx512(bool trans_b, const float* b, int64_t ldb, int64_t nr, int64_t kc, float* dst);
constexpr int kAvx2MR = 6, kAvx2NR = 16;
void microkernel_avx2(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                      float alpha, float beta, int64_t m, int64_t n);
void pack_a_avx2(bool trans_a, const float* a, int64_t lda, int64_t mr, int64_t kc, float* dst);
void pack_b_avx2(bool trans_b, const float* b, int64_t ldb, int64_t nr, int64_t kc, float* dst);
// Portable (gemm.cpp).
constexpr int kScalarMR = 4, kScalarNR = 8;
void microkernel_scalar(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                        float alpha, float beta, int64_t m, int64_t n);

// Cache blocking of the active micro-kernel: mc rows of A per block kept in L2, kc depth (a
// kc×NR panel of B per micro-kernel sweep), nc columns of B packed per slice. Zeros restore the
// tuned defaults. For the benchmark's tuning sweeps; not thread-safe against concurrent sgemm
// calls.
struct Blocking {
  int64_t mc = 0, kc = 0, nc = 0;
};
void set_blocking_override(Blocking b);
Blocking current_blocking();  // what sgemm uses now at the active SIMD level
const char* current_kernel_name();

}  // namespace gemm
}  // namespace dalle

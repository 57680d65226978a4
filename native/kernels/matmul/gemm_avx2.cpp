// AVX2+FMA sgemm micro-kernel, 6×16: 12 ymm accumulators (6 rows × two 8-float vectors), two ymm
// for the B row and one for the broadcast A value: 15 of the 16 registers, the classic Haswell
// shape (BLIS, OpenBLAS). Per k step: 2 vector loads, 6 broadcasts, 12 FMAs. Also the panel
// packers, which transpose 8×8 blocks in registers where the source is strided.
//
// Compiled with -mavx2 -mfma: no inline functions or templates shared with portable code here.
#include <immintrin.h>

#include "gemm_kernels.h"

namespace dalle {
namespace gemm {

namespace {

constexpr int MR = kAvx2MR;

// Lanes [0, n) of an 8-float vector, as the sign-bit mask maskload/maskstore want.
static inline __m256i lane_mask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}

// mode 0: c = alpha·acc; 1: c += alpha·acc; 2: c = alpha·acc + beta·c.
static inline void store_row(float* c, __m256 v0, __m256 v1, __m256 valpha, __m256 vbeta, int mode,
                             bool full, __m256i k0, __m256i k1) {
  v0 = _mm256_mul_ps(v0, valpha);
  v1 = _mm256_mul_ps(v1, valpha);
  if (full) {
    if (mode == 1) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(c));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(c + 8));
    } else if (mode == 2) {
      v0 = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(c), v0);
      v1 = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(c + 8), v1);
    }
    _mm256_storeu_ps(c, v0);
    _mm256_storeu_ps(c + 8, v1);
    return;
  }
  if (mode == 1) {
    v0 = _mm256_add_ps(v0, _mm256_maskload_ps(c, k0));
    v1 = _mm256_add_ps(v1, _mm256_maskload_ps(c + 8, k1));
  } else if (mode == 2) {
    v0 = _mm256_fmadd_ps(vbeta, _mm256_maskload_ps(c, k0), v0);
    v1 = _mm256_fmadd_ps(vbeta, _mm256_maskload_ps(c + 8, k1), v1);
  }
  _mm256_maskstore_ps(c, k0, v0);
  _mm256_maskstore_ps(c + 8, k1, v1);
}

// In-register transpose of an 8×8 block: r[i] holds row i on entry, column i on exit.
static inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int x = 0; x < 4; ++x) {
    r[x] = _mm256_permute2f128_ps(u[x], u[4 + x], 0x20);
    r[4 + x] = _mm256_permute2f128_ps(u[x], u[4 + x], 0x31);
  }
}

}  // namespace

void pack_a_avx2(bool trans_a, const float* a, int64_t lda, int64_t mr, int64_t kc, float* dst) {
  const __m256i row_mask = lane_mask(MR);
  if (trans_a) {  // each k step is mr contiguous floats
    const __m256i m = lane_mask(mr);
    for (int64_t p = 0; p < kc; ++p)
      _mm256_maskstore_ps(dst + p * MR, row_mask, _mm256_maskload_ps(a + p * lda, m));
    return;
  }
  // Rows are contiguous in k: transpose 8-deep chunks of the MR rows (rows past mr are zero).
  for (int64_t p = 0; p < kc; p += 8) {
    const int64_t n = kc - p < 8 ? kc - p : 8;
    const __m256i m = lane_mask(n);
    __m256 r[8];
    for (int i = 0; i < 8; ++i)
      r[i] = i < mr ? _mm256_maskload_ps(a + i * lda + p, m) : _mm256_setzero_ps();
    transpose8(r);
    for (int64_t k = 0; k < n; ++k) _mm256_maskstore_ps(dst + (p + k) * MR, row_mask, r[k]);
  }
}

void pack_b_avx2(bool trans_b, const float* b, int64_t ldb, int64_t nr, int64_t kc, float* dst) {
  constexpr int NR = kAvx2NR;
  if (!trans_b) {  // each k step is nr contiguous floats
    const __m256i m0 = lane_mask(nr), m1 = lane_mask(nr - 8);
    for (int64_t p = 0; p < kc; ++p) {
      _mm256_store_ps(dst + p * NR, _mm256_maskload_ps(b + p * ldb, m0));
      _mm256_store_ps(dst + p * NR + 8, _mm256_maskload_ps(b + p * ldb + 8, m1));
    }
    return;
  }
  // Column j of op(B) is row j of b, contiguous in k: transpose 8×8 blocks.
  for (int64_t p = 0; p < kc; p += 8) {
    const int64_t n = kc - p < 8 ? kc - p : 8;
    const __m256i m = lane_mask(n);
    for (int half = 0; half < 2; ++half) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) {
        const int64_t j = half * 8 + i;
        r[i] = j < nr ? _mm256_maskload_ps(b + j * ldb + p, m) : _mm256_setzero_ps();
      }
      transpose8(r);
      for (int64_t k = 0; k < n; ++k) _mm256_store_ps(dst + (p + k) * NR + half * 8, r[k]);
    }
  }
}

void microkernel_avx2(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                      float alpha, float beta, int64_t m, int64_t n) {
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    acc0[i] = _mm256_setzero_ps();
    acc1[i] = _mm256_setzero_ps();
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
    if (i < m) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);

#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(bp);
    const __m256 b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(ap + i);
      acc0[i] = _mm256_fmadd_ps(a, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(a, b1, acc1[i]);
    }
    ap += MR;
    bp += 16;
  }

  const __m256 valpha = _mm256_set1_ps(alpha);
  const __m256 vbeta = _mm256_set1_ps(beta);
  const int mode = beta == 0.0f ? 0 : (beta == 1.0f ? 1 : 2);
  const bool full = n == 16;
  const __m256i k0 = lane_mask(n);
  const __m256i k1 = lane_mask(n - 8);
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i)
    if (i < m) store_row(c + i * ldc, acc0[i], acc1[i], valpha, vbeta, mode, full, k0, k1);
}

}  // namespace gemm
}  // namespace dalle

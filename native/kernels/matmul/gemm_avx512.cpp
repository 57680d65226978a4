// AVX-512 sgemm micro-kernel, 14×32: 28 zmm accumulators (14 rows × two 16-float vectors), two
// zmm for the B row and one for the broadcast A value: 31 of the 32 registers, no spills. Per k
// step: 2 vector loads, 14 broadcasts, 28 FMAs, which keeps both FMA ports of a Skylake-SP /
// Sapphire Rapids core busy (~93% of peak from L1, measured). Also the panel packers, which
// transpose 16×16 blocks in registers where the source is strided.
//
// This file is compiled with -mavx512*: it must hold no inline functions or templates shared with
// portable code (the linker could pick this copy), hence internal linkage for every helper.
#include <immintrin.h>

#include "gemm_kernels.h"

namespace dalle {
namespace gemm {

namespace {

constexpr int MR = kAvx512MR;

// mode 0: c = alpha·acc; 1: c += alpha·acc; 2: c = alpha·acc + beta·c.
static inline void store_row(float* c, __m512 v0, __m512 v1, __m512 valpha, __m512 vbeta, int mode,
                             __mmask16 k0, __mmask16 k1) {
  v0 = _mm512_mul_ps(v0, valpha);
  v1 = _mm512_mul_ps(v1, valpha);
  if (mode == 1) {
    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(k0, c));
    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(k1, c + 16));
  } else if (mode == 2) {
    v0 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(k0, c), v0);
    v1 = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(k1, c + 16), v1);
  }
  _mm512_mask_storeu_ps(c, k0, v0);
  _mm512_mask_storeu_ps(c + 16, k1, v1);
}

// The unmasked unpack/shuffle intrinsics of GCC 12 trip -Wmaybe-uninitialized on their
// internal _mm512_undefined_ps(); the all-lanes masked forms are the same instructions.
constexpr __mmask16 kAll16 = 0xffff;
constexpr __mmask8 kAll8 = 0xff;
static inline __m512 unpacklo(__m512 a, __m512 b) {
  return _mm512_mask_unpacklo_ps(a, kAll16, a, b);
}
static inline __m512 unpackhi(__m512 a, __m512 b) {
  return _mm512_mask_unpackhi_ps(a, kAll16, a, b);
}
static inline __m512 unpacklo64(__m512 a, __m512 b) {
  const __m512d x = _mm512_castps_pd(a);
  return _mm512_castpd_ps(_mm512_mask_unpacklo_pd(x, kAll8, x, _mm512_castps_pd(b)));
}
static inline __m512 unpackhi64(__m512 a, __m512 b) {
  const __m512d x = _mm512_castps_pd(a);
  return _mm512_castpd_ps(_mm512_mask_unpackhi_pd(x, kAll8, x, _mm512_castps_pd(b)));
}
template <int kImm>
static inline __m512 lanes(__m512 a, __m512 b) {
  return _mm512_mask_shuffle_f32x4(a, kAll16, a, b, kImm);
}

// In-register transpose of a 16×16 block: r[i] holds row i on entry, column i on exit.
static inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {  // 32-bit interleave of row pairs
    t[i] = unpacklo(r[i], r[i + 1]);
    t[i + 1] = unpackhi(r[i], r[i + 1]);
  }
  // 64-bit interleave: lane L of r[4g+x] now holds column 4L+x, rows 4g..4g+3.
  for (int i = 0; i < 16; i += 4) {
    r[i] = unpacklo64(t[i], t[i + 2]);
    r[i + 1] = unpackhi64(t[i], t[i + 2]);
    r[i + 2] = unpacklo64(t[i + 1], t[i + 3]);
    r[i + 3] = unpackhi64(t[i + 1], t[i + 3]);
  }
  for (int x = 0; x < 4; ++x) {  // gather the four row groups' 128-bit lanes
    t[x] = lanes<0x88>(r[x], r[4 + x]);
    t[4 + x] = lanes<0xdd>(r[x], r[4 + x]);
    t[8 + x] = lanes<0x88>(r[8 + x], r[12 + x]);
    t[12 + x] = lanes<0xdd>(r[8 + x], r[12 + x]);
  }
  for (int x = 0; x < 8; ++x) {
    r[x] = lanes<0x88>(t[x], t[8 + x]);
    r[8 + x] = lanes<0xdd>(t[x], t[8 + x]);
  }
}

static inline __mmask16 first_lanes(int64_t n) {
  return static_cast<__mmask16>(n >= 16 ? 0xffffu : (1u << n) - 1u);
}

}  // namespace

void pack_a_avx512(bool trans_a, const float* a, int64_t lda, int64_t mr, int64_t kc, float* dst) {
  const __mmask16 row_mask = static_cast<__mmask16>((1u << MR) - 1u);
  if (trans_a) {  // each k step is mr contiguous floats
    const __mmask16 m = first_lanes(mr);
    for (int64_t p = 0; p < kc; ++p)
      _mm512_mask_storeu_ps(dst + p * MR, row_mask, _mm512_maskz_loadu_ps(m, a + p * lda));
    return;
  }
  // Rows are contiguous in k: transpose 16-deep chunks of the MR rows (rows past mr are zero).
  for (int64_t p = 0; p < kc; p += 16) {
    const int64_t n = kc - p < 16 ? kc - p : 16;
    const __mmask16 m = first_lanes(n);
    __m512 r[16];
    for (int i = 0; i < 16; ++i)
      r[i] = i < mr ? _mm512_maskz_loadu_ps(m, a + i * lda + p) : _mm512_setzero_ps();
    transpose16(r);
    for (int64_t k = 0; k < n; ++k) _mm512_mask_storeu_ps(dst + (p + k) * MR, row_mask, r[k]);
  }
}

void pack_b_avx512(bool trans_b, const float* b, int64_t ldb, int64_t nr, int64_t kc, float* dst) {
  constexpr int NR = kAvx512NR;
  if (!trans_b) {  // each k step is nr contiguous floats
    const __mmask16 m0 = first_lanes(nr), m1 = first_lanes(nr > 16 ? nr - 16 : 0);
    for (int64_t p = 0; p < kc; ++p) {
      _mm512_store_ps(dst + p * NR, _mm512_maskz_loadu_ps(m0, b + p * ldb));
      _mm512_store_ps(dst + p * NR + 16, _mm512_maskz_loadu_ps(m1, b + p * ldb + 16));
    }
    return;
  }
  // Column j of op(B) is row j of b, contiguous in k: transpose 16×16 blocks.
  for (int64_t p = 0; p < kc; p += 16) {
    const int64_t n = kc - p < 16 ? kc - p : 16;
    const __mmask16 m = first_lanes(n);
    for (int half = 0; half < 2; ++half) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i) {
        const int64_t j = half * 16 + i;
        r[i] = j < nr ? _mm512_maskz_loadu_ps(m, b + j * ldb + p) : _mm512_setzero_ps();
      }
      transpose16(r);
      for (int64_t k = 0; k < n; ++k) _mm512_store_ps(dst + (p + k) * NR + half * 16, r[k]);
    }
  }
}

void microkernel_avx512(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                        float alpha, float beta, int64_t m, int64_t n) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    acc0[i] = _mm512_setzero_ps();
    acc1[i] = _mm512_setzero_ps();
  }
  // The C tile is touched once per kc block: start fetching it while the FMAs run.
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i)
    if (i < m) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 31), _MM_HINT_T0);
    }

#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    // A streams from L2 (B was just used by the previous tile and sits in L1): fetch ahead.
    _mm_prefetch(reinterpret_cast<const char*>(ap + 32 * MR), _MM_HINT_T0);
    const __m512 b0 = _mm512_load_ps(bp);
    const __m512 b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 14
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(ap[i]);
      acc0[i] = _mm512_fmadd_ps(a, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(a, b1, acc1[i]);
    }
    ap += MR;
    bp += 32;
  }

  const __m512 valpha = _mm512_set1_ps(alpha);
  const __m512 vbeta = _mm512_set1_ps(beta);
  const int mode = beta == 0.0f ? 0 : (beta == 1.0f ? 1 : 2);
  const int64_t n0 = n < 16 ? n : 16;
  const int64_t n1 = n > 16 ? n - 16 : 0;
  const __mmask16 k0 = static_cast<__mmask16>((1u << n0) - 1u);
  const __mmask16 k1 = static_cast<__mmask16>((1u << n1) - 1u);
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i)
    if (i < m) store_row(c + i * ldc, acc0[i], acc1[i], valpha, vbeta, mode, k0, k1);
}

}  // namespace gemm
}  // namespace dalle

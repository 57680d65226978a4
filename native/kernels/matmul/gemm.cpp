// Placeholder until the blocked, packed, SIMD kernel lands: parallel over rows of C, correct
// for every transpose and stride combination.
#include "gemm.h"

#include "../common.h"

namespace dalle {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  parallel_for(M, 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float* c = C + i * ldc;
      for (int64_t j = 0; j < N; ++j) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
      for (int64_t k = 0; k < K; ++k) {
        float a = alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]);
        if (trans_b)
          for (int64_t j = 0; j < N; ++j) c[j] += a * B[j * ldb + k];
        else
          for (int64_t j = 0; j < N; ++j) c[j] += a * B[k * ldb + j];
      }
    }
  });
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                   int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c) {
  for (int64_t b = 0; b < batch; ++b)
    sgemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
          C + b * stride_c, ldc);
}

}  // namespace dalle

// Single-precision GEMM on the CPU, row-major:
//   C[M,N] = alpha · op(A) · op(B) + beta · C
// op(A) is A [M,K] (lda = its row stride), or A stored as [K,M] when trans_a; likewise B is
// [K,N], or [N,K] when trans_b. beta = 0 ignores C's old contents (NaN included).
// Every kernel that needs a matrix product (linear layers, conv via im2col, attention) calls
// this, so its speed is everyone's speed.
#pragma once
#include <cstdint>

namespace dalle {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// `batch` independent products; matrix b of A starts at A + b·stride_a (likewise B, C).
void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                   int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c);

// The obviously-correct triple loop (double accumulation), for tests and the kernel workshop.
void sgemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                     const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                     int64_t ldc);

}  // namespace dalle

// cuBLASLt matrix products, with the library opened at run time (dlopen) through our own
// declarations of the few entry points used: the binary builds where only nvcc and cudart exist,
// and loads where cuBLAS is absent (then these calls fail with E_UNSUPPORTED and callers use
// their own kernels).
//
// Semantics are those of kernels/matmul/gemm.h, row-major, with every pointer in device memory
// and the work enqueued on cuda::stream():
//   C[M,N] = alpha · op(A) · op(B) + beta · C
// op(A) is A [M,K] (lda = its row stride), or A stored as [K,M] when trans_a; likewise B is [K,N],
// or [N,K] when trans_b. beta = 0 ignores C's old contents. Accumulation is always f32
// (CUBLAS_COMPUTE_32F: no TF32 for f32 operands, so results track the CPU sgemm closely).
#pragma once
#include <cstdint>
#include <string>

#include "../core/status.h"
#include "../core/tensor.h"

namespace dalle {
namespace cuda {

// The library was opened and every entry point found (tried once, on first call).
bool cublaslt_available();
// Why it is not available; empty when it is.
std::string cublaslt_error();

// One product, or `batch` of them with matrix b of A at A + b·stride_a elements (likewise B, C).
// A and B are both f32 or both bf16; C is f32 or bf16 (f32 operands need an f32 C).
struct LtGemm {
  bool trans_a = false, trans_b = false;
  int64_t batch = 1, M = 0, N = 0, K = 0;
  float alpha = 1.0f, beta = 0.0f;
  const void* A = nullptr;
  int64_t lda = 0, stride_a = 0;
  const void* B = nullptr;
  int64_t ldb = 0, stride_b = 0;
  void* C = nullptr;
  int64_t ldc = 0, stride_c = 0;
  DType ab_type = DType::kF32;
  DType c_type = DType::kF32;
};
Status cublaslt_gemm(const LtGemm& g);

// f32 everywhere: the device twin of sgemm().
Status cublaslt_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                      int64_t ldc);

// bf16 A [M,K] and B [K,N] (bits as uint16_t), f32 accumulation, C in c_type (f32 or bf16).
Status cublaslt_gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                          const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta,
                          void* C, DType c_type, int64_t ldc);

}  // namespace cuda
}  // namespace dalle

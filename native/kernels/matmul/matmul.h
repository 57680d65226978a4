// Matrix products as ops: c = op(a)·op(b), op = transpose when trans_*, optionally batched over
// a leading dim, with a rank-2 b shared by every batch (a weight matrix). The transformer's
// linear layers and attention scores are built on these; the work is sgemm (gemm.h).
#pragma once
#include <cstdint>

namespace dalle {

// a: [batch, M, K] ([batch, K, M] when trans_a); b: [batch, K, N] ([batch, N, K] when trans_b),
// or one [K, N] / [N, K] matrix for every batch when shared_b; c: [batch, M, N].
void matmul_forward_cpu(float* c, const float* a, const float* b, int64_t batch, int64_t M,
                        int64_t N, int64_t K, bool trans_a, bool trans_b, bool shared_b);

// da (a's layout) = dc·op(b)ᵀ, transposed back when trans_a; db (b's layout) = op(a)ᵀ·dc,
// transposed back when trans_b; a shared b gets the sum over the batch.
void matmul_backward_cpu(float* da, float* db, const float* a, const float* b, const float* dc,
                         int64_t batch, int64_t M, int64_t N, int64_t K, bool trans_a, bool trans_b,
                         bool shared_b);

}  // namespace dalle

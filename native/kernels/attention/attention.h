// DALL·E attention on the CPU: the sparse kernels (only allowed keys are touched), the dense
// masked reference, the mask materialiser and the raster <-> column-major image permutation used
// around column layers. Masks and layout: attention_masks.h.
//
// Shapes: q, k, v, out, dout, dq, dk, dv are [BH, S, D] (BH = batch·heads, contiguous
// [B, Hh, S, D]); lse is [BH, S], the natural-log sum of exp(scale·q·k) over each query's
// allowed keys, kept by forward so backward can rebuild the probabilities without a max pass.
#pragma once
#include <cstdint>

#include "../../core/status.h"

namespace dalle {

// out = softmax(scale·q·kᵀ restricted to the mask) · v. Scratch is allocated here (may throw
// std::bad_alloc on the calling thread only).
void attention_forward_cpu(float* out, float* lse, const float* q, const float* k, const float* v,
                           int64_t BH, int64_t S, int64_t D, int mask, int64_t text_len,
                           int64_t grid, float scale);
// dq, dk, dv from dout, recomputing the probabilities from lse.
void attention_backward_cpu(float* dq, float* dk, float* dv, const float* q, const float* k,
                            const float* v, const float* out, const float* lse, const float* dout,
                            int64_t BH, int64_t S, int64_t D, int mask, int64_t text_len,
                            int64_t grid, float scale);

// The O(S²) reference with an explicit mask [S, S] (nonzero = key allowed). A query row with no
// allowed key gets out = 0 and lse = -inf, and no gradient.
void attention_dense_forward_cpu(float* out, float* lse, const float* q, const float* k,
                                 const float* v, const int32_t* mask, int64_t BH, int64_t S,
                                 int64_t D, float scale);
void attention_dense_backward_cpu(float* dq, float* dk, float* dv, const float* q, const float* k,
                                  const float* v, const int32_t* mask, const float* out,
                                  const float* lse, const float* dout, int64_t BH, int64_t S,
                                  int64_t D, float scale);

// mask [S, S] (1 = allowed) built from the key ranges the sparse kernels iterate; fails with
// kInternal if those ranges ever disagree with the attn_allowed predicate.
Status attention_mask_cpu(int32_t* mask, int64_t S, int mask_kind, int64_t text_len, int64_t grid);

// x [B, S, C] -> out [B, S, C] with the image part (n_img = W·W or W·W-1) moved from raster to
// column-major order; text rows copied. Transposing a square grid is its own inverse, so the
// same function undoes it (for n_img = W·W-1 the missing cell is last in both orders).
void image_transpose_cpu(float* out, const float* x, int64_t B, int64_t S, int64_t C,
                         int64_t text_len, int64_t grid);

}  // namespace dalle

// The glue ops of the DALL·E transformer and its KV-cache sampler: the fused QKV projection split
// into heads and its inverse, the KV cache write, attention of a few new queries against the
// cache, and the token + position embedding of the joint text/image sequence.
//
// Layouts: x [B, S, 3C] is the QKV projection, its last dim [q | k | v], each C = H·D laid out
// [head 0 | head 1 | ...]; per-head tensors are [B, H, S, D]. The sequence is text positions
// [0, text_len) then image cells in raster order (attention_masks.h).
#pragma once
#include <cstdint>

#include "../../core/status.h"

namespace dalle {

// q, k, v [B, H, S, D] from x [B, S, 3·H·D]: q[b,h,s,d] = x[b,s,h·D+d], k at +C, v at +2C.
void qkv_split_forward_cpu(float* q, float* k, float* v, const float* x, int64_t B, int64_t S,
                           int64_t H, int64_t D);
// The inverse permutation: dx [B, S, 3·H·D] from dq, dk, dv [B, H, S, D].
void qkv_split_backward_cpu(float* dx, const float* dq, const float* dk, const float* dv, int64_t B,
                            int64_t S, int64_t H, int64_t D);

// y [B, S, H·D] from x [B, H, S, D]: y[b,s,h·D+d] = x[b,h,s,d]. backward is the inverse.
void heads_merge_forward_cpu(float* y, const float* x, int64_t B, int64_t H, int64_t S, int64_t D);
void heads_merge_backward_cpu(float* dx, const float* dy, int64_t B, int64_t H, int64_t S, int64_t D);

// cache[bh, pos + t, :] = x[bh, t, :] for t < n; cache [BH, Smax, D], x [BH, n, D], pos + n <= Smax.
void kv_cache_write_cpu(float* cache, const float* x, int64_t BH, int64_t Smax, int64_t n, int64_t D,
                        int64_t pos);

// out [BH, n, D]: query t (sequence position pos + t) attends, under one softmax, to the cache
// keys the raster-order mask allows (attn_allowed_raster), all at positions <= pos + t. kcache,
// vcache [BH, Smax, D]; rows at positions >= pos + n are never read. Per query the recipe of
// attention_forward_cpu: f32 scores scale·q·k, max subtracted, exp, the sum in double.
void attention_cached_forward_cpu(float* out, const float* q, const float* kcache, const float* vcache,
                                  int64_t BH, int64_t n, int64_t Smax, int64_t D, int64_t pos, int mask,
                                  int64_t text_len, int64_t grid, float scale);

// The sequence embedding of ids [B, n] whose first column sits at position pos:
// out[b,t] = tokens[id] + (p < text_len ? text_pos[p] : rows[(p-T)/W] + cols[(p-T)%W]), p = pos + t.
// Fails with kInvalidArgument naming the first id outside [0, V) before writing anything; the
// positions were checked by inference. tokens [V, C], text_pos [T, C], rows and cols [W, C].
Status dalle_embed_forward_cpu(const char* op, float* out, const int32_t* ids, const float* tokens,
                               const float* text_pos, const float* rows, const float* cols, int64_t B,
                               int64_t n, int64_t V, int64_t C, int64_t pos, int64_t text_len,
                               int64_t grid);
// Its gradients, every output overwritten (rows no position uses are 0). Each output row is
// summed by one task in a fixed order (batch, then position), so the result does not depend on
// the thread count.
Status dalle_embed_backward_cpu(const char* op, float* dtokens, float* dtext_pos, float* drows,
                                float* dcols, const int32_t* ids, const float* dy, int64_t B, int64_t n,
                                int64_t V, int64_t C, int64_t pos, int64_t text_len, int64_t grid);

}  // namespace dalle

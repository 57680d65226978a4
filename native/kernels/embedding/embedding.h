// Token embedding lookup (text ids, pads and image codes) and its scatter-add gradient.
#pragma once
#include <cstdint>

#include "../../core/status.h"

namespace dalle {

// Fails with kInvalidArgument naming the first id outside [0, V) (its position as [b, n] when
// ids are [B, N], seq = N; seq = n for flat ids). Both kernels call it before writing anything.
Status embedding_check_ids(const char* op, const int32_t* ids, int64_t n, int64_t seq, int64_t V);

// out[i, :] = table[ids[i], :]; ids [n], table [V, C], out [n, C].
Status embedding_forward_cpu(const char* op, float* out, const int32_t* ids, const float* table,
                             int64_t n, int64_t seq, int64_t V, int64_t C);
// dtable[v, :] = Σ_{i : ids[i] = v} dout[i, :]; ids [n], dout [n, C], dtable [V, C] (overwritten).
// Rows are summed in position order, one vocabulary row per task, so repeated ids accumulate
// deterministically and no two threads write the same row.
Status embedding_backward_cpu(const char* op, float* dtable, const int32_t* ids, const float* dout,
                              int64_t n, int64_t seq, int64_t V, int64_t C);

}  // namespace dalle

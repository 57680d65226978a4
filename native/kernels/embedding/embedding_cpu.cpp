#include "embedding.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "../common.h"

namespace dalle {

Status embedding_check_ids(const char* op, const int32_t* ids, int64_t n, int64_t seq, int64_t V) {
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] >= 0 && ids[i] < V) continue;
    if (seq == n)
      return make_status(StatusCode::kInvalidArgument, "%s: ids[%lld] = %d is outside [0, %lld)", op,
                         static_cast<long long>(i), ids[i], static_cast<long long>(V));
    return make_status(StatusCode::kInvalidArgument, "%s: ids[%lld, %lld] = %d is outside [0, %lld)",
                       op, static_cast<long long>(i / seq), static_cast<long long>(i % seq), ids[i],
                       static_cast<long long>(V));
  }
  return Status::Ok();
}

Status embedding_forward_cpu(const char* op, float* out, const int32_t* ids, const float* table,
                             int64_t n, int64_t seq, int64_t V, int64_t C) {
  DALLE_RETURN_IF_ERROR(embedding_check_ids(op, ids, n, seq, V));
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / C);
  parallel_for(n, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      std::memcpy(out + i * C, table + static_cast<int64_t>(ids[i]) * C,
                  static_cast<size_t>(C) * sizeof(float));
  });
  return Status::Ok();
}

Status embedding_backward_cpu(const char* op, float* dtable, const int32_t* ids, const float* dout,
                              int64_t n, int64_t seq, int64_t V, int64_t C) {
  DALLE_RETURN_IF_ERROR(embedding_check_ids(op, ids, n, seq, V));
  // Counting sort of positions by id (stable, so each bucket is in position order).
  std::vector<int64_t> start(static_cast<size_t>(V) + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++start[static_cast<size_t>(ids[i]) + 1];
  for (int64_t v = 0; v < V; ++v) start[v + 1] += start[v];
  std::vector<int64_t> order(static_cast<size_t>(n));
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(next[ids[i]]++)] = i;
  }
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / C);
  parallel_for(V, grain, [&](int64_t v0, int64_t v1) {
    for (int64_t v = v0; v < v1; ++v) {
      float* row = dtable + v * C;
      std::fill(row, row + C, 0.0f);
      for (int64_t k = start[v]; k < start[v + 1]; ++k) {
        const float* g = dout + order[static_cast<size_t>(k)] * C;
        for (int64_t c = 0; c < C; ++c) row[c] += g[c];
      }
    }
  });
  return Status::Ok();
}

namespace {

Status expect_ids(const char* op, const TensorView& ids) {
  DALLE_RETURN_IF_ERROR(expect_dtype(op, "ids", ids, DType::kI32));
  DALLE_CHECK_ARG(ids.ndim == 1 || ids.ndim == 2, "%s: ids must be [N] or [B, N], got shape %s", op,
                  ids.shape_string().c_str());
  return Status::Ok();
}

// ids.shape + [C]
TensorView rows_spec(const TensorView& ids, int64_t C) {
  int64_t shape[kMaxDims];
  for (int i = 0; i < ids.ndim; ++i) shape[i] = ids.shape[i];
  shape[ids.ndim] = C;
  return out_spec(DType::kF32, shape, ids.ndim + 1);
}

Status infer_forward(OpArgs& a) {
  const TensorView &ids = a.in[0], &table = a.in[1];
  DALLE_RETURN_IF_ERROR(expect_ids(a.op, ids));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "table", table, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "table", table, 2));
  a.out = {rows_spec(ids, table.shape[1])};
  return Status::Ok();
}

Status infer_backward(OpArgs& a) {
  const TensorView &ids = a.in[0], &dy = a.in[1];
  int64_t V = 0;
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "vocab", 1, std::numeric_limits<int32_t>::max(), &V));
  DALLE_RETURN_IF_ERROR(expect_ids(a.op, ids));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dy", dy, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "dy", dy, ids.ndim + 1));
  for (int i = 0; i < ids.ndim; ++i) DALLE_RETURN_IF_ERROR(expect_dim(a.op, "dy", dy, i, ids.shape[i]));
  a.out = {out_spec(DType::kF32, {V, dy.dim(-1)})};
  return Status::Ok();
}

Status forward(OpArgs& a) {
  const TensorView &ids = a.in[0], &table = a.in[1];
  return embedding_forward_cpu(a.op, a.out[0].f32(), ids.i32(), table.f32(), ids.numel(),
                               ids.dim(-1), table.shape[0], table.shape[1]);
}

Status backward(OpArgs& a) {
  const TensorView &ids = a.in[0], &dy = a.in[1];
  const TensorView& dtable = a.out[0];
  return embedding_backward_cpu(a.op, dtable.f32(), ids.i32(), dy.f32(), ids.numel(), ids.dim(-1),
                                dtable.shape[0], dtable.shape[1]);
}

}  // namespace

DALLE_REGISTER_OP(embedding_forward,
                  {"embedding_forward", {"ids", "table"}, {"y"}, {}, infer_forward, forward});
DALLE_REGISTER_OP(embedding_backward,
                  {"embedding_backward", {"ids", "dy"}, {"dtable"}, {}, infer_backward, backward});

}  // namespace dalle

// The references the sparse kernels are tested against: dense masked attention (full S×S score
// matrix, explicit i32 mask) and the op that materialises the mask the sparse kernels use (or,
// with raster = 1, the raster-order mask the KV-cache decoder uses). Also the raster <->
// column-major image permutation for column layers.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../matmul/gemm.h"
#include "attention.h"
#include "attention_common.h"

namespace dalle {

namespace {

using attn_detail::for_each_task;

// One head's S×S tiles are large; bound how many heads are in flight at once.
int64_t dense_slots(int64_t BH, int64_t S) {
  const int64_t bytes_per_slot = 2 * S * S * static_cast<int64_t>(sizeof(float));
  const int64_t budget = int64_t{256} << 20;
  return std::max<int64_t>(1, std::min(attn_detail::worker_slots(BH), budget / bytes_per_slot));
}

}  // namespace

void attention_dense_forward_cpu(float* out, float* lse, const float* q, const float* k,
                                 const float* v, const int32_t* mask, int64_t BH, int64_t S,
                                 int64_t D, float scale) {
  const int64_t slots = dense_slots(BH, S);
  std::vector<float> tiles(static_cast<size_t>(slots * S * S));
  for_each_task(BH, slots, [&](int64_t slot, int64_t bh) {
    float* s = tiles.data() + slot * S * S;  // scores, then probabilities in place
    const int64_t off = bh * S * D;
    sgemm(false, true, S, S, D, scale, q + off, D, k + off, D, 0.0f, s, S);
    for (int64_t i = 0; i < S; ++i) {
      float* row = s + i * S;
      const int32_t* allowed = mask + i * S;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < S; ++j)
        if (allowed[j]) m = std::max(m, row[j]);
      double sum = 0.0;
      for (int64_t j = 0; j < S; ++j) {
        row[j] = allowed[j] ? std::exp(row[j] - m) : 0.0f;
        sum += row[j];
      }
      const bool any = sum > 0.0;
      for (int64_t j = 0; j < S; ++j) row[j] = any ? static_cast<float>(row[j] / sum) : 0.0f;
      lse[bh * S + i] = any ? m + static_cast<float>(std::log(sum)) : -std::numeric_limits<float>::infinity();
    }
    sgemm(false, false, S, D, S, 1.0f, s, S, v + off, D, 0.0f, out + off, D);
  });
}

void attention_dense_backward_cpu(float* dq, float* dk, float* dv, const float* q, const float* k,
                                  const float* v, const int32_t* mask, const float* out,
                                  const float* lse, const float* dout, int64_t BH, int64_t S,
                                  int64_t D, float scale) {
  const int64_t slots = dense_slots(BH, S);
  std::vector<float> tiles(static_cast<size_t>(slots * 2 * S * S));
  for_each_task(BH, slots, [&](int64_t slot, int64_t bh) {
    float* p = tiles.data() + slot * 2 * S * S;
    float* ds = p + S * S;  // dP, then dS in place
    const int64_t off = bh * S * D;
    sgemm(false, true, S, S, D, scale, q + off, D, k + off, D, 0.0f, p, S);
    sgemm(false, true, S, S, D, 1.0f, dout + off, D, v + off, D, 0.0f, ds, S);
    for (int64_t i = 0; i < S; ++i) {
      const float l = lse[bh * S + i];
      const bool live = std::isfinite(l);
      double di = 0.0;
      for (int64_t d = 0; d < D; ++d) di += static_cast<double>(dout[off + i * D + d]) * out[off + i * D + d];
      for (int64_t j = 0; j < S; ++j) {
        const int64_t x = i * S + j;
        p[x] = live && mask[x] ? std::exp(p[x] - l) : 0.0f;
        ds[x] = p[x] == 0.0f ? 0.0f : p[x] * (ds[x] - static_cast<float>(di));
      }
    }
    sgemm(false, false, S, D, S, scale, ds, S, k + off, D, 0.0f, dq + off, D);
    sgemm(true, false, S, D, S, scale, ds, S, q + off, D, 0.0f, dk + off, D);
    sgemm(true, false, S, D, S, 1.0f, p, S, dout + off, D, 0.0f, dv + off, D);
  });
}

Status attention_mask_cpu(int32_t* mask, int64_t S, int mask_kind, int64_t text_len, int64_t grid) {
  const AttnPattern pat = make_attn_pattern(mask_kind, text_len, grid);
  const int64_t cap = attn_max_key_ranges(pat);
  const int64_t slots = attn_detail::worker_slots(S);
  std::vector<AttnKeyRange> ranges(static_cast<size_t>(slots * cap));
  std::atomic<int64_t> mismatch{-1};
  for_each_task(S, slots, [&](int64_t slot, int64_t i) {
    int32_t* row = mask + i * S;
    std::memset(row, 0, sizeof(int32_t) * S);
    AttnKeyRange* r = ranges.data() + slot * cap;
    const int64_t n = attn_key_ranges(pat, i, r);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = r[k].begin; j < r[k].end; ++j) row[j] = 1;
    for (int64_t j = 0; j < S; ++j)
      if ((row[j] != 0) != attn_allowed(pat, i, j)) mismatch.store(i * S + j);
  });
  if (mismatch.load() >= 0)
    return make_status(StatusCode::kInternal,
                       "attention_mask: key ranges and predicate disagree at query %lld, key %lld",
                       static_cast<long long>(mismatch.load() / S), static_cast<long long>(mismatch.load() % S));
  return Status::Ok();
}

void image_transpose_cpu(float* out, const float* x, int64_t B, int64_t S, int64_t C,
                         int64_t text_len, int64_t grid) {
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / C);
  parallel_for(B * S, grain, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / S, pos = row % S;
      int64_t src = pos;
      if (pos >= text_len) {
        const int64_t i = pos - text_len;  // this row's cell, read from its transposed cell
        src = text_len + (i % grid) * grid + i / grid;
      }
      std::memcpy(out + row * C, x + (b * S + src) * C, sizeof(float) * C);
    }
  });
}

namespace {

// q, k, v [B, Hh, S, D] f32 and the mask [S, S] i32.
Status check_dense_inputs(const OpArgs& a, const int* idx, const char* const* names, int n) {
  for (int t = 0; t < n; ++t) {
    const TensorView& x = a.in[idx[t]];
    DALLE_RETURN_IF_ERROR(expect_dtype(a.op, names[t], x, DType::kF32));
    DALLE_RETURN_IF_ERROR(expect_rank(a.op, names[t], x, 4));
    if (t > 0) DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, names[0], a.in[idx[0]], names[t], x));
  }
  const TensorView& m = a.in[3];
  const int64_t S = a.in[0].shape[2];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "mask", m, DType::kI32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "mask", m, 2));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "mask", m, 0, S));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "mask", m, 1, S));
  return Status::Ok();
}

Status infer_dense_forward(OpArgs& a) {
  static const int idx[3] = {0, 1, 2};
  static const char* const names[3] = {"q", "k", "v"};
  DALLE_RETURN_IF_ERROR(check_dense_inputs(a, idx, names, 3));
  const TensorView& q = a.in[0];
  float scale = 0.0f;
  DALLE_RETURN_IF_ERROR(attn_detail::read_scale(a, q.shape[3], &scale));
  a.out = {out_like(q), out_spec(DType::kF32, {q.shape[0], q.shape[1], q.shape[2]})};
  return Status::Ok();
}

// q, k, v, mask, out, lse, dout.
Status infer_dense_backward(OpArgs& a) {
  static const int idx[5] = {0, 1, 2, 4, 6};
  static const char* const names[5] = {"q", "k", "v", "out", "dout"};
  DALLE_RETURN_IF_ERROR(check_dense_inputs(a, idx, names, 5));
  const TensorView& q = a.in[0];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "lse", a.in[5], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "lse", a.in[5], 3));
  for (int d = 0; d < 3; ++d) DALLE_RETURN_IF_ERROR(expect_dim(a.op, "lse", a.in[5], d, q.shape[d]));
  float scale = 0.0f;
  DALLE_RETURN_IF_ERROR(attn_detail::read_scale(a, q.shape[3], &scale));
  a.out = {out_like(q), out_like(q), out_like(q)};
  return Status::Ok();
}

Status run_dense_forward(OpArgs& a) {
  const TensorView& q = a.in[0];
  float scale = 0.0f;
  DALLE_RETURN_IF_ERROR(attn_detail::read_scale(a, q.shape[3], &scale));
  attention_dense_forward_cpu(a.out[0].f32(), a.out[1].f32(), q.f32(), a.in[1].f32(), a.in[2].f32(),
                              a.in[3].i32(), q.shape[0] * q.shape[1], q.shape[2], q.shape[3], scale);
  return Status::Ok();
}

Status run_dense_backward(OpArgs& a) {
  const TensorView& q = a.in[0];
  float scale = 0.0f;
  DALLE_RETURN_IF_ERROR(attn_detail::read_scale(a, q.shape[3], &scale));
  attention_dense_backward_cpu(a.out[0].f32(), a.out[1].f32(), a.out[2].f32(), q.f32(), a.in[1].f32(),
                               a.in[2].f32(), a.in[3].i32(), a.in[4].f32(), a.in[5].f32(),
                               a.in[6].f32(), q.shape[0] * q.shape[1], q.shape[2], q.shape[3], scale);
  return Status::Ok();
}

// The raster-order mask (attn_allowed_raster: the KV-cache decoder's), built from the runs
// attention_cached_forward iterates and checked against the predicate the same way.
Status attention_mask_raster_cpu(int32_t* mask, int64_t S, const AttnPattern& pat) {
  const int64_t cap = attn_max_key_runs(pat);
  const int64_t slots = attn_detail::worker_slots(S);
  std::vector<AttnKeyRun> runs(static_cast<size_t>(slots * cap));
  std::atomic<int64_t> mismatch{-1};
  for_each_task(S, slots, [&](int64_t slot, int64_t i) {
    int32_t* row = mask + i * S;
    std::memset(row, 0, sizeof(int32_t) * S);
    AttnKeyRun* r = runs.data() + slot * cap;
    const int64_t n = attn_key_runs_raster(pat, i, r);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = r[k].begin; j < r[k].end; j += r[k].step) row[j] = 1;
    for (int64_t j = 0; j < S; ++j)
      if ((row[j] != 0) != attn_allowed_raster(pat, i, j)) mismatch.store(i * S + j);
  });
  if (mismatch.load() >= 0)
    return make_status(StatusCode::kInternal,
                       "attention_mask: raster key runs and predicate disagree at query %lld, key %lld",
                       static_cast<long long>(mismatch.load() / S), static_cast<long long>(mismatch.load() % S));
  return Status::Ok();
}

// Optional `raster`: 0 (default) the kernels' layout, 1 raster order (differs for column only).
Status read_raster(const OpArgs& a, bool* raster) {
  int64_t r = 0;
  if (a.attrs.has("raster")) DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "raster", 0, 1, &r));
  *raster = r != 0;
  return Status::Ok();
}

// like: i32 [S], a shape and device carrier only.
Status infer_mask(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "like", a.in[0], DType::kI32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "like", a.in[0], 1));
  const int64_t S = a.in[0].shape[0];
  AttnPattern p{};
  bool raster = false;
  DALLE_RETURN_IF_ERROR(attn_detail::read_pattern(a, S, &p));
  DALLE_RETURN_IF_ERROR(read_raster(a, &raster));
  a.out = {out_spec(DType::kI32, {S, S})};
  return Status::Ok();
}

Status run_mask(OpArgs& a) {
  const int64_t S = a.in[0].shape[0];
  AttnPattern p{};
  bool raster = false;
  DALLE_RETURN_IF_ERROR(attn_detail::read_pattern(a, S, &p));
  DALLE_RETURN_IF_ERROR(read_raster(a, &raster));
  if (raster) return attention_mask_raster_cpu(a.out[0].i32(), S, p);
  return attention_mask_cpu(a.out[0].i32(), S, p.kind, p.text_len, p.grid);
}

// x [B, S, C] f32; S - text_len must be W·W or W·W - 1: the permutation is a transpose only
// when the image part is a whole grid, or a grid missing its last cell (the last in both orders).
Status read_transpose(const OpArgs& a, int64_t* T, int64_t* W) {
  const TensorView& x = a.in[0];
  const char* arg = std::strstr(a.op, "backward") ? "dy" : "x";
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, arg, x, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, arg, x, 3));
  const int64_t S = x.shape[1];
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "text_len", 0, S, T));
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "grid", 1, attn_detail::kMaxGrid, W));
  const int64_t n_img = S - *T, cells = *W * *W;
  DALLE_CHECK_ARG(n_img == cells || n_img == cells - 1,
                  "%s: %lld image positions (S = %lld minus text_len = %lld) must be grid² = %lld or "
                  "grid² - 1",
                  a.op, static_cast<long long>(n_img), static_cast<long long>(S),
                  static_cast<long long>(*T), static_cast<long long>(cells));
  return Status::Ok();
}

Status infer_transpose(OpArgs& a) {
  int64_t T = 0, W = 0;
  DALLE_RETURN_IF_ERROR(read_transpose(a, &T, &W));
  a.out = {out_like(a.in[0])};
  return Status::Ok();
}

Status run_transpose(OpArgs& a) {
  int64_t T = 0, W = 0;
  DALLE_RETURN_IF_ERROR(read_transpose(a, &T, &W));
  const TensorView& x = a.in[0];
  image_transpose_cpu(a.out[0].f32(), x.f32(), x.shape[0], x.shape[1], x.shape[2], T, W);
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(attention_dense_forward, {"attention_dense_forward",
                                            {"q", "k", "v", "mask"},
                                            {"out", "lse"},
                                            {},
                                            infer_dense_forward,
                                            run_dense_forward});
DALLE_REGISTER_OP(attention_dense_backward, {"attention_dense_backward",
                                             {"q", "k", "v", "mask", "out", "lse", "dout"},
                                             {"dq", "dk", "dv"},
                                             {},
                                             infer_dense_backward,
                                             run_dense_backward});
DALLE_REGISTER_OP(attention_mask, {"attention_mask", {"like"}, {"mask"}, {}, infer_mask, run_mask});
DALLE_REGISTER_OP(image_transpose_forward,
                  {"image_transpose_forward", {"x"}, {"y"}, {}, infer_transpose, run_transpose});
DALLE_REGISTER_OP(image_transpose_backward,
                  {"image_transpose_backward", {"dy"}, {"dx"}, {}, infer_transpose, run_transpose});

}  // namespace dalle

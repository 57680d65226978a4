// The transformer's layout and sampling ops on the CPU: QKV split / head merge (pure
// permutations, so backward is the exact inverse and no arithmetic is done), the in-place KV
// cache write, attention of new queries against the cache, and the DALL·E sequence embedding.
// CUDA kernels come later; until then the registry refuses device tensors with E_UNSUPPORTED
// (inference here never reads tensor data, so it is safe on device pointers).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../attention/attention_common.h"
#include "../common.h"
#include "../embedding/embedding.h"
#include "transformer.h"

namespace dalle {

namespace {

using attn_detail::for_each_task;
using attn_detail::worker_slots;

// Rows of `width` floats per parallel_for chunk: about kElementwiseGrain floats.
int64_t row_grain(int64_t width) { return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(1, width)); }

constexpr size_t kF = sizeof(float);

}  // namespace

void qkv_split_forward_cpu(float* q, float* k, float* v, const float* x, int64_t B, int64_t S,
                           int64_t H, int64_t D) {
  const int64_t C = H * D;
  // One task per x row: it reads 3C contiguous floats and writes 3H runs of D; every run of
  // q/k/v is written by exactly one row, so tasks never share an output line they both write.
  parallel_for(B * S, row_grain(3 * C), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / S, s = row % S;
      const float* xr = x + row * 3 * C;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t off = ((b * H + h) * S + s) * D;
        std::memcpy(q + off, xr + h * D, kF * D);
        std::memcpy(k + off, xr + C + h * D, kF * D);
        std::memcpy(v + off, xr + 2 * C + h * D, kF * D);
      }
    }
  });
}

void qkv_split_backward_cpu(float* dx, const float* dq, const float* dk, const float* dv, int64_t B,
                            int64_t S, int64_t H, int64_t D) {
  const int64_t C = H * D;
  parallel_for(B * S, row_grain(3 * C), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / S, s = row % S;
      float* xr = dx + row * 3 * C;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t off = ((b * H + h) * S + s) * D;
        std::memcpy(xr + h * D, dq + off, kF * D);
        std::memcpy(xr + C + h * D, dk + off, kF * D);
        std::memcpy(xr + 2 * C + h * D, dv + off, kF * D);
      }
    }
  });
}

void heads_merge_forward_cpu(float* y, const float* x, int64_t B, int64_t H, int64_t S, int64_t D) {
  const int64_t C = H * D;
  parallel_for(B * S, row_grain(C), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / S, s = row % S;
      for (int64_t h = 0; h < H; ++h) std::memcpy(y + row * C + h * D, x + ((b * H + h) * S + s) * D, kF * D);
    }
  });
}

void heads_merge_backward_cpu(float* dx, const float* dy, int64_t B, int64_t H, int64_t S, int64_t D) {
  const int64_t C = H * D;
  parallel_for(B * S, row_grain(C), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / S, s = row % S;
      for (int64_t h = 0; h < H; ++h) std::memcpy(dx + ((b * H + h) * S + s) * D, dy + row * C + h * D, kF * D);
    }
  });
}

void kv_cache_write_cpu(float* cache, const float* x, int64_t BH, int64_t Smax, int64_t n, int64_t D,
                        int64_t pos) {
  // Rows pos .. pos+n-1 of one head are contiguous in the cache: one copy per head.
  parallel_for(BH, row_grain(n * D), [&](int64_t h0, int64_t h1) {
    for (int64_t bh = h0; bh < h1; ++bh)
      std::memcpy(cache + (bh * Smax + pos) * D, x + bh * n * D, kF * n * D);
  });
}

void attention_cached_forward_cpu(float* out, const float* q, const float* kcache, const float* vcache,
                                  int64_t BH, int64_t n, int64_t Smax, int64_t D, int64_t pos, int mask,
                                  int64_t text_len, int64_t grid, float scale) {
  const AttnPattern pat = make_attn_pattern(mask, text_len, grid);
  // One task per (head, query). With n = 1 (the usual decoding step) the heads are the only
  // parallelism; a query's work is its key count × D, small next to a step's matmuls.
  const int64_t tasks = BH * n;
  const int64_t slots = worker_slots(tasks);
  const int64_t cap = attn_max_key_runs(pat);
  const int64_t max_keys = pos + n;  // query pos + t sees at most pos + t + 1 keys
  std::vector<float> scores(static_cast<size_t>(slots * max_keys));
  std::vector<AttnKeyRun> runs(static_cast<size_t>(slots * cap));

  for_each_task(tasks, slots, [&](int64_t slot, int64_t task) {
    const int64_t bh = task / n, t = task % n, p = pos + t;
    const float* qrow = q + (bh * n + t) * D;
    const float* kh = kcache + bh * Smax * D;
    const float* vh = vcache + bh * Smax * D;
    float* orow = out + (bh * n + t) * D;
    AttnKeyRun* r = runs.data() + slot * cap;
    float* s = scores.data() + slot * max_keys;  // this query's scores, in key order
    const int64_t nr = attn_key_runs_raster(pat, p, r);

    // Scores, then the softmax, as attention_forward_cpu's per-row loop does it.
    int64_t c = 0;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t u = 0; u < nr; ++u)
      for (int64_t j = r[u].begin; j < r[u].end; j += r[u].step) {
        const float* krow = kh + j * D;
        float dot = 0.0f;
        for (int64_t d = 0; d < D; ++d) dot += qrow[d] * krow[d];
        s[c] = scale * dot;
        m = std::max(m, s[c]);
        ++c;
      }
    double sum = 0.0;
    for (int64_t x = 0; x < c; ++x) {
      s[x] = std::exp(s[x] - m);
      sum += s[x];
    }
    // Every query sees at least itself, so sum >= 1.
    const float inv = static_cast<float>(1.0 / sum);
    std::fill(orow, orow + D, 0.0f);
    c = 0;
    for (int64_t u = 0; u < nr; ++u)
      for (int64_t j = r[u].begin; j < r[u].end; j += r[u].step) {
        const float pj = s[c++] * inv;
        const float* vrow = vh + j * D;
        for (int64_t d = 0; d < D; ++d) orow[d] += pj * vrow[d];
      }
  });
}

Status dalle_embed_forward_cpu(const char* op, float* out, const int32_t* ids, const float* tokens,
                               const float* text_pos, const float* rows, const float* cols, int64_t B,
                               int64_t n, int64_t V, int64_t C, int64_t pos, int64_t text_len,
                               int64_t grid) {
  DALLE_RETURN_IF_ERROR(embedding_check_ids(op, ids, B * n, n, V));
  parallel_for(B * n, row_grain(C), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t p = pos + i % n;
      const float* tok = tokens + static_cast<int64_t>(ids[i]) * C;
      float* y = out + i * C;
      if (p < text_len) {
        const float* e = text_pos + p * C;
        for (int64_t c = 0; c < C; ++c) y[c] = tok[c] + e[c];
      } else {
        const int64_t cell = p - text_len;
        const float* er = rows + (cell / grid) * C;
        const float* ec = cols + (cell % grid) * C;
        for (int64_t c = 0; c < C; ++c) y[c] = (tok[c] + er[c]) + ec[c];
      }
    }
  });
  return Status::Ok();
}

Status dalle_embed_backward_cpu(const char* op, float* dtokens, float* dtext_pos, float* drows,
                                float* dcols, const int32_t* ids, const float* dy, int64_t B, int64_t n,
                                int64_t V, int64_t C, int64_t pos, int64_t text_len, int64_t grid) {
  // Checks the ids before anything is written.
  DALLE_RETURN_IF_ERROR(embedding_backward_cpu(op, dtokens, ids, dy, B * n, n, V, C));
  const int64_t T = text_len, W = grid;
  // Adds Σ_b dy[b, p - pos] into acc for sequence position p, if the ids cover it.
  auto add_position = [&](float* acc, int64_t p) {
    const int64_t t = p - pos;
    if (t < 0 || t >= n) return;
    for (int64_t b = 0; b < B; ++b) {
      const float* g = dy + (b * n + t) * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += g[c];
    }
  };
  // One task per output row (T text rows, then W grid rows, then W grid columns); each is summed
  // by one thread in a fixed order, so any thread count gives the same bits.
  parallel_for(T + 2 * W, row_grain(C * std::max<int64_t>(1, B)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      if (r < T) {
        float* acc = dtext_pos + r * C;
        std::fill(acc, acc + C, 0.0f);
        add_position(acc, r);
      } else if (r < T + W) {
        const int64_t row = r - T;
        float* acc = drows + row * C;
        std::fill(acc, acc + C, 0.0f);
        // Row `row`'s cells are consecutive positions; only those the ids cover contribute.
        const int64_t first = std::max(T + row * W, pos), last = std::min(T + row * W + W, pos + n);
        for (int64_t p = first; p < last; ++p) add_position(acc, p);
      } else {
        const int64_t col = r - T - W;
        float* acc = dcols + col * C;
        std::fill(acc, acc + C, 0.0f);
        // Column `col`'s cells are every W-th position from T + col; start at the first one the
        // ids may cover rather than walking all W rows.
        const int64_t start = T + col;
        int64_t p = start;
        if (pos > start) p = start + ((pos - start + W - 1) / W) * W;
        for (; p < std::min(start + W * W, pos + n); p += W) add_position(acc, p);
      }
    }
  });
  return Status::Ok();
}

namespace {

constexpr int64_t kMaxIndex = std::numeric_limits<int32_t>::max();

bool overlaps(const TensorView& a, const TensorView& b) {
  auto a0 = reinterpret_cast<uintptr_t>(a.data), b0 = reinterpret_cast<uintptr_t>(b.data);
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

// ---- qkv split / heads merge ------------------------------------------------------------------

// heads (H) for a last dim that must split into `parts` · H · D.
Status read_heads(const OpArgs& a, const char* arg, int64_t last, int64_t parts, int64_t* H, int64_t* D) {
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "heads", 1, std::max<int64_t>(1, last), H));
  DALLE_CHECK_ARG(last % (parts * *H) == 0,
                  "%s: %s's last dim %lld does not split into %lld·heads·D with heads = %lld (not a "
                  "multiple of %lld)",
                  a.op, arg, static_cast<long long>(last), static_cast<long long>(parts),
                  static_cast<long long>(*H), static_cast<long long>(parts * *H));
  *D = last / (parts * *H);
  return Status::Ok();
}

// x [B, S, 3C] -> q, k, v [B, H, S, D].
Status infer_qkv_split(OpArgs& a) {
  const TensorView& x = a.in[0];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", x, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "x", x, 3));
  int64_t H = 0, D = 0;
  DALLE_RETURN_IF_ERROR(read_heads(a, "x", x.shape[2], 3, &H, &D));
  const TensorView spec = out_spec(DType::kF32, {x.shape[0], H, x.shape[1], D});
  a.out = {spec, spec, spec};
  return Status::Ok();
}

Status run_qkv_split(OpArgs& a) {
  const TensorView& q = a.out[0];
  qkv_split_forward_cpu(q.f32(), a.out[1].f32(), a.out[2].f32(), a.in[0].f32(), q.shape[0], q.shape[2],
                        q.shape[1], q.shape[3]);
  return Status::Ok();
}

// dq, dk, dv [B, H, S, D] -> dx [B, S, 3·H·D].
Status infer_qkv_split_backward(OpArgs& a) {
  static const char* const names[3] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i) {
    DALLE_RETURN_IF_ERROR(expect_dtype(a.op, names[i], a.in[i], DType::kF32));
    DALLE_RETURN_IF_ERROR(expect_rank(a.op, names[i], a.in[i], 4));
    if (i > 0) DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "dq", a.in[0], names[i], a.in[i]));
  }
  const TensorView& dq = a.in[0];
  a.out = {out_spec(DType::kF32, {dq.shape[0], dq.shape[2], 3 * dq.shape[1] * dq.shape[3]})};
  return Status::Ok();
}

Status run_qkv_split_backward(OpArgs& a) {
  const TensorView& dq = a.in[0];
  qkv_split_backward_cpu(a.out[0].f32(), dq.f32(), a.in[1].f32(), a.in[2].f32(), dq.shape[0], dq.shape[2],
                         dq.shape[1], dq.shape[3]);
  return Status::Ok();
}

// x [B, H, S, D] -> y [B, S, H·D].
Status infer_heads_merge(OpArgs& a) {
  const TensorView& x = a.in[0];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", x, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "x", x, 4));
  a.out = {out_spec(DType::kF32, {x.shape[0], x.shape[2], x.shape[1] * x.shape[3]})};
  return Status::Ok();
}

Status run_heads_merge(OpArgs& a) {
  const TensorView& x = a.in[0];
  heads_merge_forward_cpu(a.out[0].f32(), x.f32(), x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
  return Status::Ok();
}

// dy [B, S, C] + heads -> dx [B, H, S, C/H].
Status infer_heads_merge_backward(OpArgs& a) {
  const TensorView& dy = a.in[0];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dy", dy, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "dy", dy, 3));
  int64_t H = 0, D = 0;
  DALLE_RETURN_IF_ERROR(read_heads(a, "dy", dy.shape[2], 1, &H, &D));
  a.out = {out_spec(DType::kF32, {dy.shape[0], H, dy.shape[1], D})};
  return Status::Ok();
}

Status run_heads_merge_backward(OpArgs& a) {
  const TensorView& dx = a.out[0];
  heads_merge_backward_cpu(dx.f32(), a.in[0].f32(), dx.shape[0], dx.shape[1], dx.shape[2], dx.shape[3]);
  return Status::Ok();
}

// ---- KV cache ---------------------------------------------------------------------------------

// `pos` for n new positions in a cache of Smax: pos + n <= Smax.
Status read_cache_pos(const OpArgs& a, int64_t n, int64_t Smax, int64_t* pos) {
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "pos", 0, Smax, pos));
  DALLE_CHECK_ARG(*pos + n <= Smax,
                  "%s: pos %lld + %lld new positions = %lld exceeds the cache length %lld", a.op,
                  static_cast<long long>(*pos), static_cast<long long>(n), static_cast<long long>(*pos + n),
                  static_cast<long long>(Smax));
  return Status::Ok();
}

// x [B, H, n, D] must match cache [B, H, Smax, D] in B, H and D.
Status expect_cache_compatible(const OpArgs& a, const char* xname, const TensorView& x, const char* cname,
                               const TensorView& cache) {
  for (int d : {0, 1, 3})
    DALLE_CHECK_ARG(x.shape[d] == cache.shape[d],
                    "%s: %s %s and %s %s must agree in every dim but 2 (the sequence)", a.op, xname,
                    x.shape_string().c_str(), cname, cache.shape_string().c_str());
  return Status::Ok();
}

// cache [B, H, Smax, D] (updated in place), x [B, H, n, D]; no outputs.
Status infer_kv_cache_write(OpArgs& a) {
  const TensorView &cache = a.in[0], &x = a.in[1];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "cache", cache, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "cache", cache, 4));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", x, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "x", x, 4));
  DALLE_RETURN_IF_ERROR(expect_cache_compatible(a, "x", x, "cache", cache));
  int64_t pos = 0;
  DALLE_RETURN_IF_ERROR(read_cache_pos(a, x.shape[2], cache.shape[2], &pos));
  // memcpy from a view of the cache itself would be undefined.
  DALLE_CHECK_ARG(!overlaps(cache, x), "%s: cache and x share memory", a.op);
  a.out.clear();
  return Status::Ok();
}

Status run_kv_cache_write(OpArgs& a) {
  const TensorView &cache = a.in[0], &x = a.in[1];
  int64_t pos = 0;
  DALLE_RETURN_IF_ERROR(read_cache_pos(a, x.shape[2], cache.shape[2], &pos));
  kv_cache_write_cpu(cache.f32(), x.f32(), x.shape[0] * x.shape[1], cache.shape[2], x.shape[2], x.shape[3], pos);
  return Status::Ok();
}

struct CachedAttn {
  AttnPattern pat;
  int64_t pos;
  float scale;
};

// pos, mask, text_len (>= 1: every image query then has a key), grid, scale for n queries
// against a cache of Smax; the last query's position must lie inside the text + grid.
Status read_cached(const OpArgs& a, int64_t n, int64_t Smax, int64_t D, CachedAttn* c) {
  int64_t kind = 0, T = 0, W = 0;
  DALLE_RETURN_IF_ERROR(read_cache_pos(a, n, Smax, &c->pos));
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "mask", kAttnCausal, kAttnConv, &kind));
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "text_len", 1, kMaxIndex, &T));
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "grid", 1, attn_detail::kMaxGrid, &W));
  const int64_t last = c->pos + n - 1;
  DALLE_CHECK_ARG(last - T < W * W,
                  "%s: query position %lld (pos %lld + n %lld - 1) is image cell %lld, outside the "
                  "%lldx%lld grid after text_len = %lld",
                  a.op, static_cast<long long>(last), static_cast<long long>(c->pos), static_cast<long long>(n),
                  static_cast<long long>(last - T), static_cast<long long>(W), static_cast<long long>(W),
                  static_cast<long long>(T));
  DALLE_RETURN_IF_ERROR(attn_detail::read_scale(a, D, &c->scale));
  c->pat = make_attn_pattern(static_cast<int>(kind), T, W);
  return Status::Ok();
}

// q [B, H, n, D], kcache and vcache [B, H, Smax, D] -> out [B, H, n, D].
Status infer_attention_cached(OpArgs& a) {
  static const char* const names[3] = {"q", "kcache", "vcache"};
  for (int i = 0; i < 3; ++i) {
    DALLE_RETURN_IF_ERROR(expect_dtype(a.op, names[i], a.in[i], DType::kF32));
    DALLE_RETURN_IF_ERROR(expect_rank(a.op, names[i], a.in[i], 4));
  }
  const TensorView &q = a.in[0], &kc = a.in[1];
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "kcache", kc, "vcache", a.in[2]));
  DALLE_RETURN_IF_ERROR(expect_cache_compatible(a, "q", q, "kcache", kc));
  CachedAttn c{};
  DALLE_RETURN_IF_ERROR(read_cached(a, q.shape[2], kc.shape[2], q.shape[3], &c));
  a.out = {out_like(q)};
  return Status::Ok();
}

Status run_attention_cached(OpArgs& a) {
  const TensorView &q = a.in[0], &kc = a.in[1];
  CachedAttn c{};
  DALLE_RETURN_IF_ERROR(read_cached(a, q.shape[2], kc.shape[2], q.shape[3], &c));
  attention_cached_forward_cpu(a.out[0].f32(), q.f32(), kc.f32(), a.in[2].f32(), q.shape[0] * q.shape[1],
                               q.shape[2], kc.shape[2], q.shape[3], c.pos, c.pat.kind, c.pat.text_len,
                               c.pat.grid, c.scale);
  return Status::Ok();
}

// ---- DALL·E embedding -------------------------------------------------------------------------

struct EmbedLayout {
  int64_t pos, text_len, grid;
};

// pos (default 0), text_len, grid for ids covering positions pos .. pos+n-1; every image
// position must be a grid cell.
Status read_embed_layout(const OpArgs& a, int64_t n, EmbedLayout* l) {
  l->pos = 0;
  if (a.attrs.has("pos")) DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "pos", 0, kMaxIndex, &l->pos));
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "text_len", 1, kMaxIndex, &l->text_len));
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "grid", 1, attn_detail::kMaxGrid, &l->grid));
  const int64_t last = l->pos + n - 1, cells = l->grid * l->grid;
  DALLE_CHECK_ARG(last - l->text_len < cells,
                  "%s: position %lld (ids column %lld, pos = %lld) is image cell %lld, but a %lldx%lld "
                  "grid has cells 0..%lld",
                  a.op, static_cast<long long>(last), static_cast<long long>(n - 1),
                  static_cast<long long>(l->pos), static_cast<long long>(last - l->text_len),
                  static_cast<long long>(l->grid), static_cast<long long>(l->grid),
                  static_cast<long long>(cells - 1));
  return Status::Ok();
}

Status expect_ids_2d(const OpArgs& a, const TensorView& ids) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "ids", ids, DType::kI32));
  return expect_rank(a.op, "ids", ids, 2);
}

// ids i32 [B, n], tokens [V, C], text_pos [text_len, C], rows [grid, C], cols [grid, C].
Status infer_dalle_embed(OpArgs& a) {
  static const char* const names[5] = {"ids", "tokens", "text_pos", "rows", "cols"};
  const TensorView& ids = a.in[0];
  DALLE_RETURN_IF_ERROR(expect_ids_2d(a, ids));
  for (int i = 1; i < 5; ++i) {
    DALLE_RETURN_IF_ERROR(expect_dtype(a.op, names[i], a.in[i], DType::kF32));
    DALLE_RETURN_IF_ERROR(expect_rank(a.op, names[i], a.in[i], 2));
  }
  EmbedLayout l{};
  DALLE_RETURN_IF_ERROR(read_embed_layout(a, ids.shape[1], &l));
  const int64_t C = a.in[1].shape[1];
  const int64_t rows[5] = {0, 0, l.text_len, l.grid, l.grid};
  for (int i = 2; i < 5; ++i) {
    DALLE_RETURN_IF_ERROR(expect_dim(a.op, names[i], a.in[i], 0, rows[i]));
    DALLE_RETURN_IF_ERROR(expect_dim(a.op, names[i], a.in[i], 1, C));
  }
  a.out = {out_spec(DType::kF32, {ids.shape[0], ids.shape[1], C})};
  return Status::Ok();
}

Status run_dalle_embed(OpArgs& a) {
  const TensorView &ids = a.in[0], &tokens = a.in[1];
  EmbedLayout l{};
  DALLE_RETURN_IF_ERROR(read_embed_layout(a, ids.shape[1], &l));
  return dalle_embed_forward_cpu(a.op, a.out[0].f32(), ids.i32(), tokens.f32(), a.in[2].f32(), a.in[3].f32(),
                                 a.in[4].f32(), ids.shape[0], ids.shape[1], tokens.shape[0], tokens.shape[1],
                                 l.pos, l.text_len, l.grid);
}

// ids i32 [B, n], dy [B, n, C]; vocab -> dtokens [V, C], dtext_pos [T, C], drows, dcols [W, C].
Status infer_dalle_embed_backward(OpArgs& a) {
  const TensorView &ids = a.in[0], &dy = a.in[1];
  int64_t V = 0;
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "vocab", 1, kMaxIndex, &V));
  DALLE_RETURN_IF_ERROR(expect_ids_2d(a, ids));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dy", dy, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "dy", dy, 3));
  for (int d = 0; d < 2; ++d) DALLE_RETURN_IF_ERROR(expect_dim(a.op, "dy", dy, d, ids.shape[d]));
  EmbedLayout l{};
  DALLE_RETURN_IF_ERROR(read_embed_layout(a, ids.shape[1], &l));
  const int64_t C = dy.shape[2];
  a.out = {out_spec(DType::kF32, {V, C}), out_spec(DType::kF32, {l.text_len, C}),
           out_spec(DType::kF32, {l.grid, C}), out_spec(DType::kF32, {l.grid, C})};
  return Status::Ok();
}

Status run_dalle_embed_backward(OpArgs& a) {
  const TensorView &ids = a.in[0], &dy = a.in[1];
  EmbedLayout l{};
  DALLE_RETURN_IF_ERROR(read_embed_layout(a, ids.shape[1], &l));
  return dalle_embed_backward_cpu(a.op, a.out[0].f32(), a.out[1].f32(), a.out[2].f32(), a.out[3].f32(), ids.i32(),
                                  dy.f32(), ids.shape[0], ids.shape[1], a.out[0].shape[0], dy.shape[2], l.pos,
                                  l.text_len, l.grid);
}

}  // namespace

DALLE_REGISTER_OP(qkv_split_forward,
                  {"qkv_split_forward", {"x"}, {"q", "k", "v"}, {}, infer_qkv_split, run_qkv_split});
DALLE_REGISTER_OP(qkv_split_backward, {"qkv_split_backward",
                                       {"dq", "dk", "dv"},
                                       {"dx"},
                                       {},
                                       infer_qkv_split_backward,
                                       run_qkv_split_backward});
DALLE_REGISTER_OP(heads_merge_forward,
                  {"heads_merge_forward", {"x"}, {"y"}, {}, infer_heads_merge, run_heads_merge});
DALLE_REGISTER_OP(heads_merge_backward, {"heads_merge_backward",
                                         {"dy"},
                                         {"dx"},
                                         {},
                                         infer_heads_merge_backward,
                                         run_heads_merge_backward});
DALLE_REGISTER_OP(kv_cache_write,
                  {"kv_cache_write", {"cache", "x"}, {}, {0}, infer_kv_cache_write, run_kv_cache_write});
DALLE_REGISTER_OP(attention_cached_forward, {"attention_cached_forward",
                                             {"q", "kcache", "vcache"},
                                             {"out"},
                                             {},
                                             infer_attention_cached,
                                             run_attention_cached});
DALLE_REGISTER_OP(dalle_embed_forward, {"dalle_embed_forward",
                                        {"ids", "tokens", "text_pos", "rows", "cols"},
                                        {"out"},
                                        {},
                                        infer_dalle_embed,
                                        run_dalle_embed});
DALLE_REGISTER_OP(dalle_embed_backward, {"dalle_embed_backward",
                                         {"ids", "dy"},
                                         {"dtokens", "dtext_pos", "drows", "dcols"},
                                         {},
                                         infer_dalle_embed_backward,
                                         run_dalle_embed_backward});

}  // namespace dalle

// Sparse attention on the CPU. Work is split into tasks of (batch·head, block of consecutive
// queries). A block's keys are the union of its queries' key ranges (attention_masks.h), which
// stays a few contiguous runs of rows of K and V, so every product is an sgemm on a strided
// slice; each query then only reads the score columns of its own ranges. Nothing is done for a
// key that no query of the block may see.
#include <algorithm>
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
using attn_detail::worker_slots;

// Queries per block. A row or column block's image keys span W + 1 + Bq, so a bigger block
// mostly adds keys no query needs; a conv block already spans about h·W keys and a causal block
// the whole prefix, so there a bigger block only amortises sgemm's packing (measured: 32 vs 64
// is within noise for row/column and a few percent better at 64 for conv/causal).
int64_t query_block(const AttnPattern& p) { return p.kind == kAttnConv || p.kind == kAttnCausal ? 64 : 32; }

// One worker's scratch: the block's score and probability tiles [Bq, nk] and its key ranges.
struct BlockPlan {
  std::vector<float> s, p;
  std::vector<AttnKeyRange> own;    // [Bq][max_ranges]
  std::vector<int64_t> own_n;       // ranges per query
  std::vector<AttnKeyRange> uni;    // union over the block, sorted, disjoint
  std::vector<int64_t> uoff;        // tile column of each union range's first key
  int64_t n_uni = 0, nk = 0, max_ranges = 0;

  BlockPlan(const AttnPattern& pat, int64_t bq, int64_t S)
      : s(static_cast<size_t>(bq * S)), p(static_cast<size_t>(bq * S)),
        max_ranges(attn_max_key_ranges(pat)) {
    own.resize(static_cast<size_t>(bq * max_ranges));
    own_n.resize(static_cast<size_t>(bq));
    uni.resize(static_cast<size_t>(bq * max_ranges));
    uoff.resize(static_cast<size_t>(bq * max_ranges));
  }

  // Ranges of queries [q0, q0 + bq) and their union.
  void plan(const AttnPattern& pat, int64_t q0, int64_t bq) {
    int64_t total = 0;
    for (int64_t r = 0; r < bq; ++r) {
      own_n[r] = attn_key_ranges(pat, q0 + r, &own[r * max_ranges]);
      for (int64_t k = 0; k < own_n[r]; ++k) uni[total++] = own[r * max_ranges + k];
    }
    std::sort(uni.begin(), uni.begin() + total,
              [](const AttnKeyRange& a, const AttnKeyRange& b) { return a.begin < b.begin; });
    n_uni = 0;
    for (int64_t k = 0; k < total; ++k) attn_push_range(uni.data(), &n_uni, uni[k].begin, uni[k].end);
    nk = 0;
    for (int64_t u = 0; u < n_uni; ++u) {
      uoff[u] = nk;
      nk += uni[u].end - uni[u].begin;
    }
  }

  // Calls fn(tile column, count) for each of query row r's own ranges. Each own range lies
  // inside one union range, and both lists ascend, so one forward walk finds them.
  template <typename F>
  void for_own_columns(int64_t r, F&& fn) const {
    int64_t u = 0;
    for (int64_t k = 0; k < own_n[r]; ++k) {
      const AttnKeyRange& kr = own[r * max_ranges + k];
      while (uni[u].end < kr.end) ++u;
      fn(uoff[u] + (kr.begin - uni[u].begin), kr.end - kr.begin);
    }
  }

  // tile[:, union range u] = alpha · A[q0 rows] · X[range rows]ᵀ for every union range.
  void scores(float* tile, float alpha, const float* a_rows, const float* x, int64_t bq,
              int64_t D) const {
    for (int64_t u = 0; u < n_uni; ++u)
      sgemm(false, true, bq, uni[u].end - uni[u].begin, D, alpha, a_rows, D, x + uni[u].begin * D, D,
            0.0f, tile + uoff[u], nk);
  }

  // out[q0 rows] = alpha · Σ_u tile[:, u] · X[range u rows].
  void gather(float* out_rows, float alpha, const float* tile, const float* x, int64_t bq,
              int64_t D) const {
    for (int64_t u = 0; u < n_uni; ++u)
      sgemm(false, false, bq, D, uni[u].end - uni[u].begin, alpha, tile + uoff[u], nk,
            x + uni[u].begin * D, D, u == 0 ? 0.0f : 1.0f, out_rows, D);
  }

  // acc[range u rows] += alpha · tile[:, u]ᵀ · B[q0 rows].
  void scatter(float* acc, float alpha, const float* tile, const float* b_rows, int64_t bq,
               int64_t D) const {
    for (int64_t u = 0; u < n_uni; ++u)
      sgemm(true, false, uni[u].end - uni[u].begin, D, bq, alpha, tile + uoff[u], nk, b_rows, D,
            1.0f, acc + uni[u].begin * D, D);
  }
};

}  // namespace

void attention_forward_cpu(float* out, float* lse, const float* q, const float* k, const float* v,
                           int64_t BH, int64_t S, int64_t D, int mask, int64_t text_len,
                           int64_t grid, float scale) {
  const AttnPattern pat = make_attn_pattern(mask, text_len, grid);
  const int64_t bq = std::min(query_block(pat), S);
  const int64_t blocks = (S + bq - 1) / bq;
  const int64_t tasks = BH * blocks;
  const int64_t slots = worker_slots(tasks);
  std::vector<BlockPlan> plans;
  plans.reserve(static_cast<size_t>(slots));
  for (int64_t s = 0; s < slots; ++s) plans.emplace_back(pat, bq, S);

  for_each_task(tasks, slots, [&](int64_t slot, int64_t task) {
    BlockPlan& pl = plans[slot];
    const int64_t bh = task / blocks, q0 = (task % blocks) * bq, n = std::min(bq, S - q0);
    const int64_t off = bh * S * D;
    pl.plan(pat, q0, n);
    pl.scores(pl.s.data(), scale, q + off + q0 * D, k + off, n, D);
    for (int64_t r = 0; r < n; ++r) {
      const float* srow = pl.s.data() + r * pl.nk;
      float* prow = pl.p.data() + r * pl.nk;
      std::fill(prow, prow + pl.nk, 0.0f);
      float m = -std::numeric_limits<float>::infinity();
      pl.for_own_columns(r, [&](int64_t c, int64_t len) {
        for (int64_t j = c; j < c + len; ++j) m = std::max(m, srow[j]);
      });
      double sum = 0.0;
      pl.for_own_columns(r, [&](int64_t c, int64_t len) {
        for (int64_t j = c; j < c + len; ++j) {
          prow[j] = std::exp(srow[j] - m);
          sum += prow[j];
        }
      });
      const float inv = static_cast<float>(1.0 / sum);
      pl.for_own_columns(r, [&](int64_t c, int64_t len) {
        for (int64_t j = c; j < c + len; ++j) prow[j] *= inv;
      });
      lse[bh * S + q0 + r] = m + static_cast<float>(std::log(sum));
    }
    pl.gather(out + off + q0 * D, 1.0f, pl.p.data(), v + off, n, D);
  });
}

void attention_backward_cpu(float* dq, float* dk, float* dv, const float* q, const float* k,
                            const float* v, const float* out, const float* lse, const float* dout,
                            int64_t BH, int64_t S, int64_t D, int mask, int64_t text_len,
                            int64_t grid, float scale) {
  const AttnPattern pat = make_attn_pattern(mask, text_len, grid);
  const int64_t bq = std::min(query_block(pat), S);
  const int64_t blocks = (S + bq - 1) / bq;
  // dk and dv sum over every query block, so blocks of one head that run concurrently need
  // separate accumulators. With enough heads to fill the threads, one task per head writes
  // straight into dk/dv; otherwise a head's blocks are dealt to `groups` tasks, group 0 into
  // dk/dv and the others into zeroed partials that are added in at the end.
  const int64_t threads = ThreadPool::global().num_threads();
  const int64_t groups =
      BH >= threads ? 1 : std::max<int64_t>(1, std::min(blocks, (2 * threads + BH - 1) / BH));
  const int64_t tasks = BH * groups;
  const int64_t slots = worker_slots(tasks);
  const int64_t head = S * D;
  std::vector<BlockPlan> plans;
  plans.reserve(static_cast<size_t>(slots));
  for (int64_t s = 0; s < slots; ++s) plans.emplace_back(pat, bq, S);
  std::vector<float> partial(static_cast<size_t>(BH * (groups - 1) * 2 * head), 0.0f);
  std::memset(dk, 0, sizeof(float) * BH * head);
  std::memset(dv, 0, sizeof(float) * BH * head);

  for_each_task(tasks, slots, [&](int64_t slot, int64_t task) {
    BlockPlan& pl = plans[slot];
    const int64_t bh = task / groups, g = task % groups, off = bh * head;
    float* dk_acc = g == 0 ? dk + off : partial.data() + ((bh * (groups - 1) + g - 1) * 2) * head;
    float* dv_acc = g == 0 ? dv + off : dk_acc + head;
    for (int64_t blk = g; blk < blocks; blk += groups) {
      const int64_t q0 = blk * bq, n = std::min(bq, S - q0);
      const float* q_rows = q + off + q0 * D;
      const float* do_rows = dout + off + q0 * D;
      pl.plan(pat, q0, n);
      pl.scores(pl.s.data(), scale, q_rows, k + off, n, D);
      for (int64_t r = 0; r < n; ++r) {
        const float* srow = pl.s.data() + r * pl.nk;
        float* prow = pl.p.data() + r * pl.nk;
        const float l = lse[bh * S + q0 + r];
        std::fill(prow, prow + pl.nk, 0.0f);
        pl.for_own_columns(r, [&](int64_t c, int64_t len) {
          for (int64_t j = c; j < c + len; ++j) prow[j] = std::exp(srow[j] - l);
        });
      }
      // dP = dO·Vᵀ, then dS = P ⊙ (dP − rowsum(dO ⊙ O)); both in the score tile.
      pl.scores(pl.s.data(), 1.0f, do_rows, v + off, n, D);
      for (int64_t r = 0; r < n; ++r) {
        const float* o_row = out + off + (q0 + r) * D;
        double di = 0.0;
        for (int64_t d = 0; d < D; ++d) di += static_cast<double>(do_rows[r * D + d]) * o_row[d];
        float* srow = pl.s.data() + r * pl.nk;
        const float* prow = pl.p.data() + r * pl.nk;
        const float dif = static_cast<float>(di);
        for (int64_t j = 0; j < pl.nk; ++j) srow[j] = prow[j] * (srow[j] - dif);
      }
      pl.gather(dq + off + q0 * D, scale, pl.s.data(), k + off, n, D);
      pl.scatter(dk_acc, scale, pl.s.data(), q_rows, n, D);
      pl.scatter(dv_acc, 1.0f, pl.p.data(), do_rows, n, D);
    }
  });

  if (groups > 1) {
    parallel_for(BH * head, kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t x = b; x < e; ++x) {
        const int64_t bh = x / head, i = x % head;
        float sk = 0.0f, sv = 0.0f;
        for (int64_t g = 1; g < groups; ++g) {
          const float* part = partial.data() + ((bh * (groups - 1) + g - 1) * 2) * head;
          sk += part[i];
          sv += part[head + i];
        }
        dk[x] += sk;
        dv[x] += sv;
      }
    });
  }
}

namespace {

// q, k, v: f32 [B, Hh, S, D], same shape.
Status check_qkv(const OpArgs& a) {
  static const char* names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; ++i) {
    DALLE_RETURN_IF_ERROR(expect_dtype(a.op, names[i], a.in[i], DType::kF32));
    DALLE_RETURN_IF_ERROR(expect_rank(a.op, names[i], a.in[i], 4));
  }
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "q", a.in[0], "k", a.in[1]));
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "q", a.in[0], "v", a.in[2]));
  return Status::Ok();
}

int64_t heads_of(const TensorView& q) { return q.shape[0] * q.shape[1]; }

Status infer_forward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(check_qkv(a));
  const TensorView& q = a.in[0];
  AttnPattern p{};
  float scale = 0.0f;
  DALLE_RETURN_IF_ERROR(attn_detail::read_pattern(a, q.shape[2], &p));
  DALLE_RETURN_IF_ERROR(attn_detail::read_scale(a, q.shape[3], &scale));
  a.out = {out_like(q), out_spec(DType::kF32, {q.shape[0], q.shape[1], q.shape[2]})};
  return Status::Ok();
}

// q, k, v, out, lse, dout.
Status infer_backward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(check_qkv(a));
  const TensorView& q = a.in[0];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "out", a.in[3], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "q", q, "out", a.in[3]));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "lse", a.in[4], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "lse", a.in[4], 3));
  for (int d = 0; d < 3; ++d) DALLE_RETURN_IF_ERROR(expect_dim(a.op, "lse", a.in[4], d, q.shape[d]));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dout", a.in[5], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "q", q, "dout", a.in[5]));
  AttnPattern p{};
  float scale = 0.0f;
  DALLE_RETURN_IF_ERROR(attn_detail::read_pattern(a, q.shape[2], &p));
  DALLE_RETURN_IF_ERROR(attn_detail::read_scale(a, q.shape[3], &scale));
  a.out = {out_like(q), out_like(q), out_like(q)};
  return Status::Ok();
}

Status run_forward(OpArgs& a) {
  const TensorView& q = a.in[0];
  AttnPattern p{};
  float scale = 0.0f;
  DALLE_RETURN_IF_ERROR(attn_detail::read_pattern(a, q.shape[2], &p));
  DALLE_RETURN_IF_ERROR(attn_detail::read_scale(a, q.shape[3], &scale));
  attention_forward_cpu(a.out[0].f32(), a.out[1].f32(), q.f32(), a.in[1].f32(), a.in[2].f32(),
                        heads_of(q), q.shape[2], q.shape[3], p.kind, p.text_len, p.grid, scale);
  return Status::Ok();
}

Status run_backward(OpArgs& a) {
  const TensorView& q = a.in[0];
  AttnPattern p{};
  float scale = 0.0f;
  DALLE_RETURN_IF_ERROR(attn_detail::read_pattern(a, q.shape[2], &p));
  DALLE_RETURN_IF_ERROR(attn_detail::read_scale(a, q.shape[3], &scale));
  attention_backward_cpu(a.out[0].f32(), a.out[1].f32(), a.out[2].f32(), q.f32(), a.in[1].f32(),
                         a.in[2].f32(), a.in[3].f32(), a.in[4].f32(), a.in[5].f32(), heads_of(q),
                         q.shape[2], q.shape[3], p.kind, p.text_len, p.grid, scale);
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(attention_forward,
                  {"attention_forward", {"q", "k", "v"}, {"out", "lse"}, {}, infer_forward, run_forward});
DALLE_REGISTER_OP(attention_backward, {"attention_backward",
                                       {"q", "k", "v", "out", "lse", "dout"},
                                       {"dq", "dk", "dv"},
                                       {},
                                       infer_backward,
                                       run_backward});

}  // namespace dalle

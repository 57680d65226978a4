#include "logit_laplace.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common.h"

namespace dalle {

namespace {

// Fixed block of elements (x) or rows: the unit of the deterministic partial sums and scans.
constexpr int64_t kBlock = 1 << 14;

// ln x and ln(1 − x) in double for x in (0, 1); logit(x) = lx − l1x, ln(x(1 − x)) = lx + l1x.
struct LogPair {
  double lx, l1x;
};
inline LogPair log_pair(float x) {
  const double xd = x;
  return {std::log(xd), std::log1p(-xd)};
}

constexpr double kLn2 = 0.69314718055994530942;

Status bad_x(const char* op, const float* x, int64_t i) {
  return make_status(StatusCode::kInvalidArgument,
                     "%s: x has %g at flat index %lld; it must lie in the open interval (0, 1)", op,
                     static_cast<double>(x[i]), static_cast<long long>(i));
}

// Σ over rows of row_sum(r), as partial sums over fixed row blocks added serially: the result does not depend on
// the thread count.
template <typename RowSum>
double blocked_sum(int64_t rows, int64_t C, RowSum row_sum) {
  const int64_t rows_per_block = std::max<int64_t>(1, kBlock / C);
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  std::vector<double> partial(static_cast<size_t>(blocks));
  parallel_for(blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const int64_t r_end = std::min(rows, (blk + 1) * rows_per_block);
      double s = 0.0;
      for (int64_t r = blk * rows_per_block; r < r_end; ++r) s += row_sum(r);
      partial[static_cast<size_t>(blk)] = s;
    }
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

int64_t logit_laplace_first_bad(const float* x, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<int64_t> first(static_cast<size_t>(blocks), -1);
  parallel_for(blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const int64_t end = std::min(n, (blk + 1) * kBlock);
      for (int64_t i = blk * kBlock; i < end; ++i) {
        if (!(x[i] > 0.0f && x[i] < 1.0f)) {  // NaN fails too
          first[static_cast<size_t>(blk)] = i;
          break;
        }
      }
    }
  });
  for (int64_t f : first)
    if (f >= 0) return f;
  return -1;
}

Status logit_laplace_forward_cpu(const char* op, float* nll, const float* x, const float* params, int64_t rows,
                                 int64_t C) {
  const int64_t bad = logit_laplace_first_bad(x, rows * C);
  if (bad >= 0) return bad_x(op, x, bad);
  nll[0] = static_cast<float>(blocked_sum(rows, C, [&](int64_t r) {
    const float* xr = x + r * C;
    const float* mu = params + r * 2 * C;
    const float* lnb = mu + C;
    double s = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      const LogPair lp = log_pair(xr[c]);
      const double d = (lp.lx - lp.l1x) - static_cast<double>(mu[c]);
      const double l = static_cast<double>(lnb[c]);
      s += std::fabs(d) * std::exp(-l) + l + kLn2 + (lp.lx + lp.l1x);
    }
    return s;
  }));
  return Status::Ok();
}

Status logit_laplace_backward_cpu(const char* op, float* dparams, const float* x, const float* params,
                                  const float* dnll, int64_t rows, int64_t C) {
  const int64_t bad = logit_laplace_first_bad(x, rows * C);
  if (bad >= 0) return bad_x(op, x, bad);
  const double g = dnll[0];
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / C);
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * C;
      const float* mu = params + r * 2 * C;
      const float* lnb = mu + C;
      float* dmu = dparams + r * 2 * C;
      float* dlnb = dmu + C;
      for (int64_t c = 0; c < C; ++c) {
        const LogPair lp = log_pair(xr[c]);
        const double d = (lp.lx - lp.l1x) - static_cast<double>(mu[c]);
        const double s = std::exp(-static_cast<double>(lnb[c]));
        const double sign = d > 0.0 ? 1.0 : (d < 0.0 ? -1.0 : 0.0);
        dmu[c] = static_cast<float>(0.0 - g * sign * s);  // 0 − (…), not −(…): +0 where d = 0
        dlnb[c] = static_cast<float>(g * (1.0 - std::fabs(d) * s));
      }
    }
  });
  return Status::Ok();
}

Status sigmoid_mse_forward_cpu(const char* op, float* loss, const float* x, const float* params, int64_t rows,
                               int64_t C) {
  const int64_t bad = logit_laplace_first_bad(x, rows * C);
  if (bad >= 0) return bad_x(op, x, bad);
  loss[0] = static_cast<float>(blocked_sum(rows, C, [&](int64_t r) {
    const float* xr = x + r * C;
    const float* mu = params + r * 2 * C;
    double s = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      const double d = 1.0 / (1.0 + std::exp(-static_cast<double>(mu[c]))) - xr[c];
      s += d * d;
    }
    return s;
  }));
  return Status::Ok();
}

Status sigmoid_mse_backward_cpu(const char* op, float* dparams, const float* x, const float* params,
                                const float* dloss, int64_t rows, int64_t C) {
  const int64_t bad = logit_laplace_first_bad(x, rows * C);
  if (bad >= 0) return bad_x(op, x, bad);
  const double g = dloss[0];
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / C);
  parallel_for(rows, grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * C;
      const float* mu = params + r * 2 * C;
      float* dmu = dparams + r * 2 * C;
      float* dlnb = dmu + C;
      for (int64_t c = 0; c < C; ++c) {
        const double sig = 1.0 / (1.0 + std::exp(-static_cast<double>(mu[c])));
        dmu[c] = static_cast<float>(g * 2.0 * (sig - xr[c]) * sig * (1.0 - sig));
        dlnb[c] = 0.0f;
      }
    }
  });
  return Status::Ok();
}

namespace {

// x [..., C] and params [..., 2C] with the same leading dims; both f32.
Status infer_pair(OpArgs& a) {
  const TensorView &x = a.in[0], &params = a.in[1];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", x, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "params", params, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank_at_least(a.op, "x", x, 1));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "params", params, x.ndim));
  for (int i = 0; i + 1 < x.ndim; ++i) DALLE_RETURN_IF_ERROR(expect_dim(a.op, "params", params, i, x.shape[i]));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "params", params, x.ndim - 1, 2 * x.shape[x.ndim - 1]));
  return Status::Ok();
}

Status infer_fwd(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(infer_pair(a));
  a.out = {out_spec(DType::kF32, {1})};
  return Status::Ok();
}

Status infer_bwd(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(infer_pair(a));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dnll", a.in[2], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "dnll", a.in[2], 1));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "dnll", a.in[2], 0, 1));
  a.out = {out_like(a.in[1])};
  return Status::Ok();
}

Status fwd(OpArgs& a) {
  const TensorView& x = a.in[0];
  return logit_laplace_forward_cpu(a.op, a.out[0].f32(), x.f32(), a.in[1].f32(), leading_rows(x), x.dim(-1));
}

Status bwd(OpArgs& a) {
  const TensorView& x = a.in[0];
  return logit_laplace_backward_cpu(a.op, a.out[0].f32(), x.f32(), a.in[1].f32(), a.in[2].f32(), leading_rows(x),
                                    x.dim(-1));
}

Status mse_fwd(OpArgs& a) {
  const TensorView& x = a.in[0];
  return sigmoid_mse_forward_cpu(a.op, a.out[0].f32(), x.f32(), a.in[1].f32(), leading_rows(x), x.dim(-1));
}

Status mse_bwd(OpArgs& a) {
  const TensorView& x = a.in[0];
  return sigmoid_mse_backward_cpu(a.op, a.out[0].f32(), x.f32(), a.in[1].f32(), a.in[2].f32(), leading_rows(x),
                                  x.dim(-1));
}

}  // namespace

DALLE_REGISTER_OP(logit_laplace_forward,
                  {"logit_laplace_forward", {"x", "params"}, {"nll"}, {}, infer_fwd, fwd});
DALLE_REGISTER_OP(logit_laplace_backward,
                  {"logit_laplace_backward", {"x", "params", "dnll"}, {"dparams"}, {}, infer_bwd, bwd});

DALLE_REGISTER_OP(sigmoid_mse_forward,
                  {"sigmoid_mse_forward", {"x", "params"}, {"loss"}, {}, infer_fwd, mse_fwd});
DALLE_REGISTER_OP(sigmoid_mse_backward,
                  {"sigmoid_mse_backward", {"x", "params", "dloss"}, {"dparams"}, {}, infer_bwd, mse_bwd});

}  // namespace dalle

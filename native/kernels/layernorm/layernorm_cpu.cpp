#include "layernorm.h"

#include <cmath>

#include "../common.h"
#include "../elementwise/elementwise.h"

namespace dalle {

void layernorm_forward_cpu(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                           const float* bias, int64_t rows, int64_t C, float eps) {
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / C);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = inp + r * C;
      // Two passes in double: one-pass E[x²]−E[x]² cancels badly when |mean| ≫ std.
      double s = 0.0;
      for (int64_t c = 0; c < C; ++c) s += x[c];
      const double m = s / static_cast<double>(C);
      double v = 0.0;
      for (int64_t c = 0; c < C; ++c) {
        const double d = x[c] - m;
        v += d * d;
      }
      const float rs = static_cast<float>(1.0 / std::sqrt(v / static_cast<double>(C) + eps));
      const float mf = static_cast<float>(m);
      float* y = out + r * C;
      for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - mf) * rs * weight[c] + bias[c];
      mean[r] = mf;
      rstd[r] = rs;
    }
  });
}

void layernorm_backward_cpu(float* dinp, float* dweight, float* dbias, const float* inp,
                            const float* weight, const float* mean, const float* rstd,
                            const float* dout, int64_t rows, int64_t C) {
  float* outs[2] = {dweight, dbias};
  blocked_column_sums(rows, C, 2, outs, [&](int64_t r0, int64_t r1, float* acc) {
    float* dw = acc;
    float* db = acc + C;
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = inp + r * C;
      const float* g = dout + r * C;
      const float m = mean[r], rs = rstd[r];
      // dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂)), ĝ = dy · weight, x̂ the normalised input.
      double sum_g = 0.0, sum_gx = 0.0;
      for (int64_t c = 0; c < C; ++c) {
        const float xh = (x[c] - m) * rs;
        const float gh = g[c] * weight[c];
        sum_g += gh;
        sum_gx += static_cast<double>(gh) * xh;
        dw[c] += g[c] * xh;
        db[c] += g[c];
      }
      const float mean_g = static_cast<float>(sum_g / static_cast<double>(C));
      const float mean_gx = static_cast<float>(sum_gx / static_cast<double>(C));
      float* dx = dinp + r * C;
      for (int64_t c = 0; c < C; ++c) {
        const float xh = (x[c] - m) * rs;
        dx[c] = rs * (g[c] * weight[c] - mean_g - xh * mean_gx);
      }
    }
  });
}

namespace {

Status get_eps(const OpArgs& a, float* eps) {
  double e = 1e-5;
  if (a.attrs.has("eps")) DALLE_RETURN_IF_ERROR(a.attrs.get_num(a.op, "eps", &e));
  // eps = 0 would divide by zero on a constant row (and always at C = 1).
  DALLE_CHECK_ARG(e > 0.0 && e < 1.0, "%s: attribute 'eps' must be in (0, 1), got %g", a.op, e);
  *eps = static_cast<float>(e);
  return Status::Ok();
}

Status expect_vector(const char* op, const char* arg, const TensorView& t, int64_t n) {
  DALLE_RETURN_IF_ERROR(expect_dtype(op, arg, t, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(op, arg, t, 1));
  return expect_dim(op, arg, t, 0, n);
}

Status infer_forward(OpArgs& a) {
  float eps = 0.0f;
  DALLE_RETURN_IF_ERROR(get_eps(a, &eps));
  const TensorView& x = a.in[0];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", x, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank_at_least(a.op, "x", x, 1));
  const int64_t C = x.dim(-1), rows = leading_rows(x);
  DALLE_RETURN_IF_ERROR(expect_vector(a.op, "weight", a.in[1], C));
  DALLE_RETURN_IF_ERROR(expect_vector(a.op, "bias", a.in[2], C));
  a.out = {out_like(x), out_spec(DType::kF32, {rows}), out_spec(DType::kF32, {rows})};
  return Status::Ok();
}

Status infer_backward(OpArgs& a) {
  const TensorView &x = a.in[0], &dy = a.in[4];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", x, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank_at_least(a.op, "x", x, 1));
  const int64_t C = x.dim(-1), rows = leading_rows(x);
  DALLE_RETURN_IF_ERROR(expect_vector(a.op, "weight", a.in[1], C));
  DALLE_RETURN_IF_ERROR(expect_vector(a.op, "mean", a.in[2], rows));
  DALLE_RETURN_IF_ERROR(expect_vector(a.op, "rstd", a.in[3], rows));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dy", dy, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "x", x, "dy", dy));
  a.out = {out_like(x), out_spec(DType::kF32, {C}), out_spec(DType::kF32, {C})};
  return Status::Ok();
}

Status forward(OpArgs& a) {
  float eps = 0.0f;
  DALLE_RETURN_IF_ERROR(get_eps(a, &eps));
  const TensorView& x = a.in[0];
  layernorm_forward_cpu(a.out[0].f32(), a.out[1].f32(), a.out[2].f32(), x.f32(), a.in[1].f32(),
                        a.in[2].f32(), leading_rows(x), x.dim(-1), eps);
  return Status::Ok();
}

Status backward(OpArgs& a) {
  const TensorView& x = a.in[0];
  layernorm_backward_cpu(a.out[0].f32(), a.out[1].f32(), a.out[2].f32(), x.f32(), a.in[1].f32(),
                         a.in[2].f32(), a.in[3].f32(), a.in[4].f32(), leading_rows(x), x.dim(-1));
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(layernorm_forward, {"layernorm_forward", {"x", "weight", "bias"},
                                      {"y", "mean", "rstd"}, {}, infer_forward, forward});
DALLE_REGISTER_OP(layernorm_backward,
                  {"layernorm_backward", {"x", "weight", "mean", "rstd", "dy"},
                   {"dx", "dweight", "dbias"}, {}, infer_backward, backward});

}  // namespace dalle

#include "elementwise.h"

#include <cstring>

namespace dalle {

void bias_add_forward_cpu(float* out, const float* inp, const float* bias, int64_t rows, int64_t C) {
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / C);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = inp + r * C;
      float* y = out + r * C;
      for (int64_t c = 0; c < C; ++c) y[c] = x[c] + bias[c];
    }
  });
}

void bias_add_backward_cpu(float* dbias, const float* dout, int64_t rows, int64_t C) {
  float* outs[1] = {dbias};
  blocked_column_sums(rows, C, 1, outs, [&](int64_t r0, int64_t r1, float* acc) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = dout + r * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += g[c];
    }
  });
}

void residual_forward_cpu(float* out, const float* inp, const float* res, float scale, int64_t n) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = inp[i] + scale * res[i];
  });
}

void residual_backward_cpu(float* dinp, float* dres, const float* dout, float scale, int64_t n) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    std::memcpy(dinp + b, dout + b, static_cast<size_t>(e - b) * sizeof(float));
    for (int64_t i = b; i < e; ++i) dres[i] = scale * dout[i];
  });
}

namespace {

Status infer_bias_add(OpArgs& a) {
  const TensorView &x = a.in[0], &b = a.in[1];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", x, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "b", b, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank_at_least(a.op, "x", x, 1));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "b", b, 1));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "b", b, 0, x.dim(-1)));
  a.out = {out_like(x)};
  return Status::Ok();
}

Status infer_bias_add_backward(OpArgs& a) {
  const TensorView& dy = a.in[0];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dy", dy, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank_at_least(a.op, "dy", dy, 1));
  a.out = {out_spec(DType::kF32, {dy.dim(-1)})};
  return Status::Ok();
}

// scale defaults to 1; any finite value is allowed (0 turns the residual off, negatives subtract).
Status get_scale(const OpArgs& a, float* scale) {
  double s = 1.0;
  if (a.attrs.has("scale")) DALLE_RETURN_IF_ERROR(a.attrs.get_num(a.op, "scale", &s));
  *scale = static_cast<float>(s);
  return Status::Ok();
}

Status infer_residual(OpArgs& a) {
  float scale = 1.0f;
  DALLE_RETURN_IF_ERROR(get_scale(a, &scale));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", a.in[0], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "r", a.in[1], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "x", a.in[0], "r", a.in[1]));
  a.out = {out_like(a.in[0])};
  return Status::Ok();
}

Status infer_residual_backward(OpArgs& a) {
  float scale = 1.0f;
  DALLE_RETURN_IF_ERROR(get_scale(a, &scale));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dy", a.in[0], DType::kF32));
  a.out = {out_like(a.in[0]), out_like(a.in[0])};
  return Status::Ok();
}

Status bias_add_fwd(OpArgs& a) {
  const TensorView& x = a.in[0];
  bias_add_forward_cpu(a.out[0].f32(), x.f32(), a.in[1].f32(), leading_rows(x), x.dim(-1));
  return Status::Ok();
}
Status bias_add_bwd(OpArgs& a) {
  const TensorView& dy = a.in[0];
  bias_add_backward_cpu(a.out[0].f32(), dy.f32(), leading_rows(dy), dy.dim(-1));
  return Status::Ok();
}
Status residual_fwd(OpArgs& a) {
  float scale = 1.0f;
  DALLE_RETURN_IF_ERROR(get_scale(a, &scale));
  residual_forward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[1].f32(), scale, a.in[0].numel());
  return Status::Ok();
}
Status residual_bwd(OpArgs& a) {
  float scale = 1.0f;
  DALLE_RETURN_IF_ERROR(get_scale(a, &scale));
  residual_backward_cpu(a.out[0].f32(), a.out[1].f32(), a.in[0].f32(), scale, a.in[0].numel());
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(bias_add_forward,
                  {"bias_add_forward", {"x", "b"}, {"y"}, {}, infer_bias_add, bias_add_fwd});
DALLE_REGISTER_OP(bias_add_backward,
                  {"bias_add_backward", {"dy"}, {"db"}, {}, infer_bias_add_backward, bias_add_bwd});
DALLE_REGISTER_OP(residual_forward,
                  {"residual_forward", {"x", "r"}, {"y"}, {}, infer_residual, residual_fwd});
DALLE_REGISTER_OP(residual_backward, {"residual_backward", {"dy"}, {"dx", "dr"}, {},
                                      infer_residual_backward, residual_bwd});

}  // namespace dalle

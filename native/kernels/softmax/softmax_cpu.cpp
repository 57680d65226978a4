#include "softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../common.h"

namespace dalle {

void softmax_forward_cpu(float* out, const float* inp, int64_t rows, int64_t C) {
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / C);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = inp + r * C;
      float* y = out + r * C;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < C; ++c) mx = std::max(mx, x[c]);
      if (mx == -std::numeric_limits<float>::infinity()) {
        for (int64_t c = 0; c < C; ++c) y[c] = 0.0f;
        continue;
      }
      double sum = 0.0;
      for (int64_t c = 0; c < C; ++c) {
        y[c] = std::exp(x[c] - mx);
        sum += y[c];
      }
      // sum >= 1 (the max term is exp(0)), so the division is always safe.
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t c = 0; c < C; ++c) y[c] *= inv;
    }
  });
}

void softmax_backward_cpu(float* dinp, const float* y, const float* dout, int64_t rows, int64_t C) {
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / C);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* p = y + r * C;
      const float* g = dout + r * C;
      float* dx = dinp + r * C;
      double dot = 0.0;
      for (int64_t c = 0; c < C; ++c) dot += static_cast<double>(p[c]) * g[c];
      const float d = static_cast<float>(dot);
      for (int64_t c = 0; c < C; ++c) dx[c] = p[c] * (g[c] - d);
    }
  });
}

namespace {

Status infer_forward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", a.in[0], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank_at_least(a.op, "x", a.in[0], 1));
  a.out = {out_like(a.in[0])};
  return Status::Ok();
}

Status infer_backward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "y", a.in[0], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank_at_least(a.op, "y", a.in[0], 1));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dy", a.in[1], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "y", a.in[0], "dy", a.in[1]));
  a.out = {out_like(a.in[0])};
  return Status::Ok();
}

Status forward(OpArgs& a) {
  const TensorView& x = a.in[0];
  softmax_forward_cpu(a.out[0].f32(), x.f32(), leading_rows(x), x.dim(-1));
  return Status::Ok();
}

Status backward(OpArgs& a) {
  const TensorView& y = a.in[0];
  softmax_backward_cpu(a.out[0].f32(), y.f32(), a.in[1].f32(), leading_rows(y), y.dim(-1));
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(softmax_forward, {"softmax_forward", {"x"}, {"y"}, {}, infer_forward, forward});
DALLE_REGISTER_OP(softmax_backward,
                  {"softmax_backward", {"y", "dy"}, {"dx"}, {}, infer_backward, backward});

}  // namespace dalle

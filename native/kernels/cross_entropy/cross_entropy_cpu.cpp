#include "cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../common.h"

namespace dalle {

namespace {

// Max and Σ exp(x − max) over one row's allowed range: the stable log-sum-exp's two halves.
void range_stats(const float* x, int32_t lo, int32_t hi, float* mx, double* sum) {
  float m = x[lo];
  for (int32_t j = lo + 1; j < hi; ++j) m = std::max(m, x[j]);
  double s = 0.0;
  for (int32_t j = lo; j < hi; ++j) s += std::exp(static_cast<double>(x[j] - m));
  *mx = m;
  *sum = s;
}

}  // namespace

Status cross_entropy_check(const char* op, const int32_t* targets, const int32_t* ranges, int64_t N,
                           int64_t V) {
  for (int64_t n = 0; n < N; ++n) {
    const int32_t lo = ranges[2 * n], hi = ranges[2 * n + 1];
    DALLE_CHECK_ARG(lo >= 0 && lo < hi && hi <= V,
                    "%s: ranges[%lld] = [%d, %d) must be a non-empty range inside [0, %lld)", op,
                    static_cast<long long>(n), lo, hi, static_cast<long long>(V));
    DALLE_CHECK_ARG(targets[n] >= lo && targets[n] < hi,
                    "%s: targets[%lld] = %d is outside its range [%d, %d)", op,
                    static_cast<long long>(n), targets[n], lo, hi);
  }
  return Status::Ok();
}

Status cross_entropy_forward_cpu(const char* op, float* loss, float* per_position, const float* logits,
                                 const int32_t* targets, const float* weights, const int32_t* ranges,
                                 int64_t N, int64_t V) {
  DALLE_RETURN_IF_ERROR(cross_entropy_check(op, targets, ranges, N, V));
  std::vector<double> ce(static_cast<size_t>(N));
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / V);
  parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* x = logits + n * V;
      float mx = 0.0f;
      double sum = 0.0;
      range_stats(x, ranges[2 * n], ranges[2 * n + 1], &mx, &sum);
      ce[static_cast<size_t>(n)] = static_cast<double>(mx) + std::log(sum) - x[targets[n]];
      per_position[n] = static_cast<float>(ce[static_cast<size_t>(n)]);
    }
  });
  // Summed serially in position order so the loss does not depend on the thread count.
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) total += static_cast<double>(weights[n]) * ce[static_cast<size_t>(n)];
  loss[0] = static_cast<float>(total);
  return Status::Ok();
}

Status cross_entropy_backward_cpu(const char* op, float* dlogits, const float* logits,
                                  const int32_t* targets, const float* weights, const int32_t* ranges,
                                  float dloss, int64_t N, int64_t V) {
  DALLE_RETURN_IF_ERROR(cross_entropy_check(op, targets, ranges, N, V));
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / V);
  parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* x = logits + n * V;
      float* dx = dlogits + n * V;
      const int32_t lo = ranges[2 * n], hi = ranges[2 * n + 1];
      std::fill(dx, dx + lo, 0.0f);
      std::fill(dx + hi, dx + V, 0.0f);
      const double g = static_cast<double>(dloss) * weights[n];
      if (g == 0.0) {
        std::fill(dx + lo, dx + hi, 0.0f);
        continue;
      }
      float mx = 0.0f;
      double sum = 0.0;
      range_stats(x, lo, hi, &mx, &sum);
      const double scale = g / sum;
      for (int32_t j = lo; j < hi; ++j) dx[j] = static_cast<float>(scale * std::exp(static_cast<double>(x[j] - mx)));
      dx[targets[n]] -= static_cast<float>(g);
    }
  });
  return Status::Ok();
}

namespace {

Status infer_common(OpArgs& a) {
  const TensorView &logits = a.in[0], &targets = a.in[1], &weights = a.in[2], &ranges = a.in[3];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "logits", logits, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "logits", logits, 2));
  const int64_t N = logits.shape[0];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "targets", targets, DType::kI32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "targets", targets, 1));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "targets", targets, 0, N));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "weights", weights, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "weights", weights, 1));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "weights", weights, 0, N));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "ranges", ranges, DType::kI32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "ranges", ranges, 2));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "ranges", ranges, 0, N));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "ranges", ranges, 1, 2));
  return Status::Ok();
}

Status infer_forward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(infer_common(a));
  a.out = {out_spec(DType::kF32, {1}), out_spec(DType::kF32, {a.in[0].shape[0]})};
  return Status::Ok();
}

Status infer_backward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(infer_common(a));
  const TensorView& dloss = a.in[4];
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dloss", dloss, DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_rank(a.op, "dloss", dloss, 1));
  DALLE_RETURN_IF_ERROR(expect_dim(a.op, "dloss", dloss, 0, 1));
  a.out = {out_like(a.in[0])};
  return Status::Ok();
}

Status forward(OpArgs& a) {
  const TensorView& logits = a.in[0];
  return cross_entropy_forward_cpu(a.op, a.out[0].f32(), a.out[1].f32(), logits.f32(), a.in[1].i32(),
                                   a.in[2].f32(), a.in[3].i32(), logits.shape[0], logits.shape[1]);
}

Status backward(OpArgs& a) {
  const TensorView& logits = a.in[0];
  return cross_entropy_backward_cpu(a.op, a.out[0].f32(), logits.f32(), a.in[1].i32(), a.in[2].f32(),
                                    a.in[3].i32(), a.in[4].f32()[0], logits.shape[0], logits.shape[1]);
}

}  // namespace

DALLE_REGISTER_OP(cross_entropy_forward,
                  {"cross_entropy_forward", {"logits", "targets", "weights", "ranges"},
                   {"loss", "per_position"}, {}, infer_forward, forward});
DALLE_REGISTER_OP(cross_entropy_backward,
                  {"cross_entropy_backward", {"logits", "targets", "weights", "ranges", "dloss"},
                   {"dlogits"}, {}, infer_backward, backward});

}  // namespace dalle

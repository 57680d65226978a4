#include "optim.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../common.h"

namespace dalle {

void adamw_step_cpu(float* param, const float* grad, float* m, float* v, int64_t n, double lr, double beta1,
                    double beta2, double eps, double weight_decay, int64_t step) {
  // Scalars as PyTorch's single-tensor AdamW forms them (in double), then the per-element math in f32.
  const double t = static_cast<double>(step);
  const float decay = static_cast<float>(1.0 - lr * weight_decay);
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(beta1, t)));
  const float bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, t)));
  const float b2 = static_cast<float>(beta2), one_minus_b1 = static_cast<float>(1.0 - beta1),
              one_minus_b2 = static_cast<float>(1.0 - beta2), epsf = static_cast<float>(eps);
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float g = grad[i];
      float mi = m[i] + one_minus_b1 * (g - m[i]);
      float vi = b2 * v[i] + one_minus_b2 * g * g;
      float denom = std::sqrt(vi) / bc2_sqrt + epsf;
      m[i] = mi;
      v[i] = vi;
      param[i] = param[i] * decay - step_size * (mi / denom);
    }
  });
}

double sum_squares_cpu(const float* x, int64_t n) {
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks));
  parallel_for(blocks, 4, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const float* p = x + blk * kBlock;
      const int64_t len = std::min(kBlock, n - blk * kBlock);
      // Four chains hide the add latency; the order is fixed, so the sum is reproducible.
      double s[4] = {0.0, 0.0, 0.0, 0.0};
      int64_t i = 0;
      for (; i + 4 <= len; i += 4)
        for (int j = 0; j < 4; ++j) s[j] += static_cast<double>(p[i + j]) * p[i + j];
      for (; i < len; ++i) s[0] += static_cast<double>(p[i]) * p[i];
      partial[blk] = (s[0] + s[1]) + (s[2] + s[3]);
    }
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

double clip_grad_norm_cpu(float* x, int64_t n, double max_norm) {
  const double norm = std::sqrt(sum_squares_cpu(x, n));
  if (std::isfinite(norm) && norm > max_norm) {
    const float scale = static_cast<float>(max_norm / (norm + 1e-6));
    parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) x[i] *= scale;
    });
  }
  return norm;
}

void ema_update_cpu(float* ema, const float* param, int64_t n, double decay) {
  const double keep = decay, take = 1.0 - decay;
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      ema[i] = static_cast<float>(keep * static_cast<double>(ema[i]) + take * static_cast<double>(param[i]));
  });
}

namespace {

bool overlaps(const TensorView& a, const TensorView& b) {
  auto a0 = reinterpret_cast<uintptr_t>(a.data), b0 = reinterpret_cast<uintptr_t>(b.data);
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

Status get_nonneg(const OpArgs& a, const char* name, double* out) {
  DALLE_RETURN_IF_ERROR(a.attrs.get_num(a.op, name, out));
  DALLE_CHECK_ARG(*out >= 0.0, "%s: %s must be >= 0, got %g", a.op, name, *out);
  return Status::Ok();
}

struct AdamW {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;
};

Status get_adamw(const OpArgs& a, AdamW* h) {
  DALLE_RETURN_IF_ERROR(get_nonneg(a, "lr", &h->lr));
  DALLE_RETURN_IF_ERROR(get_nonneg(a, "beta1", &h->beta1));
  DALLE_RETURN_IF_ERROR(get_nonneg(a, "beta2", &h->beta2));
  DALLE_RETURN_IF_ERROR(get_nonneg(a, "eps", &h->eps));
  DALLE_RETURN_IF_ERROR(get_nonneg(a, "weight_decay", &h->weight_decay));
  // beta = 1 would zero the bias correction 1 - beta^t.
  DALLE_CHECK_ARG(h->beta1 < 1.0, "%s: beta1 must be in [0, 1), got %g", a.op, h->beta1);
  DALLE_CHECK_ARG(h->beta2 < 1.0, "%s: beta2 must be in [0, 1), got %g", a.op, h->beta2);
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "step", 1, (int64_t{1} << 53) - 1, &h->step));
  return Status::Ok();
}

Status infer_adamw(OpArgs& a) {
  static const char* const names[] = {"param", "grad", "m", "v"};
  for (int i = 0; i < 4; ++i) DALLE_RETURN_IF_ERROR(expect_dtype(a.op, names[i], a.in[i], DType::kF32));
  for (int i = 1; i < 4; ++i) DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "param", a.in[0], names[i], a.in[i]));
  // Every element is read and written in one pass: a shared buffer would mix the updates.
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      DALLE_CHECK_ARG(!overlaps(a.in[i], a.in[j]), "%s: %s and %s share memory", a.op, names[i], names[j]);
  AdamW h{};
  DALLE_RETURN_IF_ERROR(get_adamw(a, &h));
  a.out.clear();
  return Status::Ok();
}

Status adamw(OpArgs& a) {
  AdamW h{};
  DALLE_RETURN_IF_ERROR(get_adamw(a, &h));
  adamw_step_cpu(a.in[0].f32(), a.in[1].f32(), a.in[2].f32(), a.in[3].f32(), a.in[0].numel(), h.lr, h.beta1,
                 h.beta2, h.eps, h.weight_decay, h.step);
  return Status::Ok();
}

Status infer_norm(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", a.in[0], DType::kF32));
  a.out = {out_spec(DType::kF32, {1})};
  return Status::Ok();
}

Status grad_norm(OpArgs& a) {
  a.out[0].f32()[0] = static_cast<float>(std::sqrt(sum_squares_cpu(a.in[0].f32(), a.in[0].numel())));
  return Status::Ok();
}

Status get_max_norm(const OpArgs& a, double* max_norm) {
  DALLE_RETURN_IF_ERROR(a.attrs.get_num(a.op, "max_norm", max_norm));
  DALLE_CHECK_ARG(*max_norm > 0.0, "%s: max_norm must be > 0, got %g", a.op, *max_norm);
  return Status::Ok();
}

Status infer_clip(OpArgs& a) {
  double max_norm = 0.0;
  DALLE_RETURN_IF_ERROR(get_max_norm(a, &max_norm));
  return infer_norm(a);
}

Status clip(OpArgs& a) {
  double max_norm = 0.0;
  DALLE_RETURN_IF_ERROR(get_max_norm(a, &max_norm));
  a.out[0].f32()[0] = static_cast<float>(clip_grad_norm_cpu(a.in[0].f32(), a.in[0].numel(), max_norm));
  return Status::Ok();
}

Status get_decay(const OpArgs& a, double* decay) {
  DALLE_RETURN_IF_ERROR(a.attrs.get_num(a.op, "decay", decay));
  DALLE_CHECK_ARG(*decay >= 0.0 && *decay <= 1.0, "%s: decay must be in [0, 1], got %g", a.op, *decay);
  return Status::Ok();
}

Status infer_ema(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "ema", a.in[0], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "param", a.in[1], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "ema", a.in[0], "param", a.in[1]));
  // A shifted overlap would read elements another chunk has already updated.
  DALLE_CHECK_ARG(!overlaps(a.in[0], a.in[1]), "%s: ema and param share memory", a.op);
  double decay = 0.0;
  DALLE_RETURN_IF_ERROR(get_decay(a, &decay));
  a.out.clear();
  return Status::Ok();
}

Status ema(OpArgs& a) {
  double decay = 0.0;
  DALLE_RETURN_IF_ERROR(get_decay(a, &decay));
  ema_update_cpu(a.in[0].f32(), a.in[1].f32(), a.in[0].numel(), decay);
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(adamw_step, {"adamw_step", {"param", "grad", "m", "v"}, {}, {0, 2, 3}, infer_adamw, adamw});
DALLE_REGISTER_OP(grad_norm, {"grad_norm", {"x"}, {"norm"}, {}, infer_norm, grad_norm});
DALLE_REGISTER_OP(clip_grad_norm, {"clip_grad_norm", {"x"}, {"norm"}, {0}, infer_clip, clip});
DALLE_REGISTER_OP(ema_update, {"ema_update", {"ema", "param"}, {}, {0}, infer_ema, ema});

}  // namespace dalle

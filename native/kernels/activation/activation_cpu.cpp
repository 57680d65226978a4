#include "activation.h"

#include <cmath>

#include "../common.h"
#include "gelu_rows.h"

namespace dalle {

void gelu_forward_cpu(float* out, const float* inp, int64_t n) {
  const GeluKernels& k = gelu_kernels();
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) { k.forward(out + b, inp + b, e - b); });
}

void gelu_backward_cpu(float* dinp, const float* inp, const float* dout, int64_t n) {
  const GeluKernels& k = gelu_kernels();
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) { k.backward(dinp + b, inp + b, dout + b, e - b); });
}

void relu_forward_cpu(float* out, const float* inp, int64_t n) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
  });
}

void relu_backward_cpu(float* dinp, const float* inp, const float* dout, int64_t n) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
  });
}

namespace {

Status infer_unary(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", a.in[0], DType::kF32));
  a.out = {out_like(a.in[0])};
  return Status::Ok();
}

Status infer_unary_backward(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", a.in[0], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "dy", a.in[1], DType::kF32));
  DALLE_RETURN_IF_ERROR(expect_same_shape(a.op, "x", a.in[0], "dy", a.in[1]));
  a.out = {out_like(a.in[0])};
  return Status::Ok();
}

Status gelu_fwd(OpArgs& a) {
  gelu_forward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[0].numel());
  return Status::Ok();
}
Status gelu_bwd(OpArgs& a) {
  gelu_backward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[1].f32(), a.in[0].numel());
  return Status::Ok();
}
Status relu_fwd(OpArgs& a) {
  relu_forward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[0].numel());
  return Status::Ok();
}
Status relu_bwd(OpArgs& a) {
  relu_backward_cpu(a.out[0].f32(), a.in[0].f32(), a.in[1].f32(), a.in[0].numel());
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(gelu_forward, {"gelu_forward", {"x"}, {"y"}, {}, infer_unary, gelu_fwd});
DALLE_REGISTER_OP(gelu_backward, {"gelu_backward", {"x", "dy"}, {"dx"}, {}, infer_unary_backward, gelu_bwd});
DALLE_REGISTER_OP(relu_forward, {"relu_forward", {"x"}, {"y"}, {}, infer_unary, relu_fwd});
DALLE_REGISTER_OP(relu_backward, {"relu_backward", {"x", "dy"}, {"dx"}, {}, infer_unary_backward, relu_bwd});

}  // namespace dalle

#include "cast.h"

#include "../common.h"

namespace dalle {

void cast_f32_to_bf16_cpu(uint16_t* out, const float* inp, int64_t n) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = f32_to_bf16(inp[i]);
  });
}

void cast_bf16_to_f32_cpu(float* out, const uint16_t* inp, int64_t n) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = bf16_to_f32(inp[i]);
  });
}

namespace {

Status infer_to_bf16(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", a.in[0], DType::kF32));
  a.out = {out_like(a.in[0], DType::kBF16)};
  return Status::Ok();
}

Status infer_to_f32(OpArgs& a) {
  DALLE_RETURN_IF_ERROR(expect_dtype(a.op, "x", a.in[0], DType::kBF16));
  a.out = {out_like(a.in[0], DType::kF32)};
  return Status::Ok();
}

Status to_bf16(OpArgs& a) {
  cast_f32_to_bf16_cpu(a.out[0].bf16(), a.in[0].f32(), a.in[0].numel());
  return Status::Ok();
}

Status to_f32(OpArgs& a) {
  cast_bf16_to_f32_cpu(a.out[0].f32(), a.in[0].bf16(), a.in[0].numel());
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(cast_f32_to_bf16, {"cast_f32_to_bf16", {"x"}, {"y"}, {}, infer_to_bf16, to_bf16});
DALLE_REGISTER_OP(cast_bf16_to_f32, {"cast_bf16_to_f32", {"x"}, {"y"}, {}, infer_to_f32, to_f32});

}  // namespace dalle

#include "random.h"

#include <cmath>

namespace dalle {

Status get_seed_offset(const OpArgs& a, uint64_t* seed, uint64_t* offset) {
  int64_t s = 0, o = 0;
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "seed", 0, kMaxSeedOrOffset, &s));
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "offset", 0, kMaxSeedOrOffset, &o));
  *seed = static_cast<uint64_t>(s);
  *offset = static_cast<uint64_t>(o);
  return Status::Ok();
}

void philox_uint32_cpu(int32_t* out, int64_t n, uint64_t seed, uint64_t offset) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    philox_words(seed, offset, b, e, [&](int64_t i, uint32_t w) { out[i] = static_cast<int32_t>(w); });
  });
}

void random_uniform_cpu(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    philox_words(seed, offset, b, e, [&](int64_t i, uint32_t w) { out[i] = u32_to_unit_open(w); });
  });
}

void random_normal_cpu(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  constexpr float kTwoPi = 6.28318530717958647692f;
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    float u1 = 0.0f;
    philox_words(seed, offset, 2 * b, 2 * e, [&](int64_t j, uint32_t w) {
      if ((j & 1) == 0) {
        u1 = u32_to_unit_open(w);
      } else {
        float u2 = u32_to_unit_open(w);
        out[j >> 1] = std::sqrt(-2.0f * std::log(u1)) * std::cos(kTwoPi * u2);
      }
    });
  });
}

namespace {

// `like` only lends its shape; any dtype will do.
Status infer_draw(OpArgs& a, DType out_dtype) {
  uint64_t seed = 0, offset = 0;
  DALLE_RETURN_IF_ERROR(get_seed_offset(a, &seed, &offset));
  a.out = {out_like(a.in[0], out_dtype)};
  return Status::Ok();
}
Status infer_u32(OpArgs& a) { return infer_draw(a, DType::kI32); }
Status infer_f32(OpArgs& a) { return infer_draw(a, DType::kF32); }

template <typename T, void (*Draw)(T*, int64_t, uint64_t, uint64_t)>
Status draw_kernel(OpArgs& a) {
  uint64_t seed = 0, offset = 0;
  DALLE_RETURN_IF_ERROR(get_seed_offset(a, &seed, &offset));
  Draw(static_cast<T*>(a.out[0].data), a.out[0].numel(), seed, offset);
  return Status::Ok();
}

}  // namespace

DALLE_REGISTER_OP(philox_uint32,
                  {"philox_uint32", {"like"}, {"bits"}, {}, infer_u32, draw_kernel<int32_t, philox_uint32_cpu>});
DALLE_REGISTER_OP(random_uniform,
                  {"random_uniform", {"like"}, {"u"}, {}, infer_f32, draw_kernel<float, random_uniform_cpu>});
DALLE_REGISTER_OP(random_normal,
                  {"random_normal", {"like"}, {"z"}, {}, infer_f32, draw_kernel<float, random_normal_cpu>});

}  // namespace dalle

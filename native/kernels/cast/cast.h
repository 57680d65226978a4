// f32 <-> bf16 conversions (round to nearest even, NaN kept NaN: f32_to_bf16 in core/tensor.h).
#pragma once
#include <cstdint>

namespace dalle {

// out [n] bf16 bits, inp [n] f32.
void cast_f32_to_bf16_cpu(uint16_t* out, const float* inp, int64_t n);
// out [n] f32, inp [n] bf16 bits; exact.
void cast_bf16_to_f32_cpu(float* out, const uint16_t* inp, int64_t n);

}  // namespace dalle

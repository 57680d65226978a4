// Counter-based random draws on Philox4x32-10 (core/rng.h). Element i of a draw reads stream
// word offset + i (random_normal: words offset + 2i and offset + 2i + 1), so a draw does not depend
// on thread count, chunking or backend, and a draw at offset + k equals elements k.. of a larger
// draw at offset (words k.. for random_normal: offset + 2k).
#pragma once
#include <cstdint>

#include "../../core/rng.h"
#include "../common.h"

namespace dalle {

// Largest seed or offset: JS numbers are exact integers up to here.
constexpr int64_t kMaxSeedOrOffset = (int64_t{1} << 53) - 1;

// Reads the `seed` and `offset` attributes (integers in [0, 2^53 - 1]).
Status get_seed_offset(const OpArgs& a, uint64_t* seed, uint64_t* offset);

// Calls fn(i, philox_u32(seed, offset + i)) for i in [begin, end), computing each Philox block
// once for its four words rather than once per word.
template <typename F>
inline void philox_words(uint64_t seed, uint64_t offset, int64_t begin, int64_t end, F&& fn) {
  int64_t i = begin;
  while (i < end) {
    uint64_t w = offset + static_cast<uint64_t>(i);
    Philox4 b = philox4x32_10(seed, w >> 2);
    for (unsigned j = static_cast<unsigned>(w & 3); j < 4 && i < end; ++j, ++i) fn(i, b.v[j]);
  }
}

// out [n]: the raw 32-bit words, reinterpreted as int32.
void philox_uint32_cpu(int32_t* out, int64_t n, uint64_t seed, uint64_t offset);
// out [n]: philox_uniform, in the open interval (0, 1).
void random_uniform_cpu(float* out, int64_t n, uint64_t seed, uint64_t offset);
// out [n]: N(0, 1) by Box-Muller, z = sqrt(-2 ln u1) · cos(2π u2) with u1, u2 the uniforms of
// words offset + 2i and offset + 2i + 1 (the sine half is dropped so each element owns its words).
void random_normal_cpu(float* out, int64_t n, uint64_t seed, uint64_t offset);

}  // namespace dalle

// Counter-based RNG: Philox4x32-10 (Salmon et al., SC'11). Stateless: the bits for
// (seed, offset) are a pure function, identical on CPU and CUDA, so a kernel can draw element i's
// noise from offset base+i on any backend, in any order, with any thread count.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define DALLE_HD __host__ __device__ __forceinline__
#else
// static: each translation unit keeps its own copy, so a per-ISA kernel file (compiled with
// -mavx512f) can inline these without the linker handing its copy to portable code.
#define DALLE_HD static inline
#endif

namespace dalle {

struct Philox4 {
  uint32_t v[4];
};

DALLE_HD uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Block `counter` of the stream keyed by `seed`: four 32-bit words.
DALLE_HD Philox4 philox4x32_10(uint64_t seed, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo32(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo32(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// The 32-bit word at `offset` of the stream: word offset%4 of block offset/4.
DALLE_HD uint32_t philox_u32(uint64_t seed, uint64_t offset) {
  Philox4 b = philox4x32_10(seed, offset >> 2);
  return b.v[offset & 3];
}

// Uniform in the open interval (0, 1): 23 random bits, centred in their bucket, so u lies in
// [2^-24, 1 - 2^-24] and log(u), log(1-u) are always finite. (24 bits would not do: k + 0.5 for
// k = 2^24 - 1 is not an f32 and rounds u up to exactly 1.)
DALLE_HD float u32_to_unit_open(uint32_t x) { return (static_cast<float>(x >> 9) + 0.5f) * (1.0f / 8388608.0f); }

DALLE_HD float philox_uniform(uint64_t seed, uint64_t offset) {
  return u32_to_unit_open(philox_u32(seed, offset));
}

}  // namespace dalle

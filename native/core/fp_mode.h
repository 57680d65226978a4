#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace dalle {

// Subnormal floats cost 10-100x per instruction on x86. Training drives them out of softmax
// tails and decaying gradients, and a small dVAE step then slowed 4x over a few hundred steps.
// Kernels therefore run with flush-to-zero and denormals-are-zero, like oneDNN and PyTorch's
// set_flush_denormal(True). The mode is per thread: this guard sets it for a kernel's duration and
// restores the caller's, so JavaScript on the calling thread keeps IEEE subnormals.
class FlushDenormals {
 public:
  FlushDenormals() : saved_(read()) { write(saved_ | flush_bits()); }
  ~FlushDenormals() { write(saved_); }
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

  // For threads that only ever run kernels (the pool's workers).
  static void enable_for_this_thread() { write(read() | flush_bits()); }

 private:
#if defined(__x86_64__) || defined(__i386__)
  static uint64_t flush_bits() { return 0x8040; }  // MXCSR FTZ (bit 15) | DAZ (bit 6)
  static uint64_t read() { return _mm_getcsr(); }
  static void write(uint64_t v) { _mm_setcsr(static_cast<unsigned>(v)); }
#elif defined(__aarch64__)
  static uint64_t flush_bits() { return uint64_t{1} << 24; }  // FPCR.FZ
  static uint64_t read() {
    uint64_t v;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(v));
    return v;
  }
  static void write(uint64_t v) { __asm__ __volatile__("msr fpcr, %0" : : "r"(v)); }
#else
  static uint64_t flush_bits() { return 0; }
  static uint64_t read() { return 0; }
  static void write(uint64_t) {}
#endif
  uint64_t saved_;
};

}  // namespace dalle

// Tensor-core instructions of the emulated device, computed for the whole warp at once by the
// lane that completes the collective. Layouts are the PTX ISA's ("Matrix Fragments for
// mma.m16n8k16 with floating point type", "Warp-level matrix load instruction: ldmatrix"), with
// groupID = lane / 4 and threadID_in_group = lane % 4:
//   A (16x16, row): a0,a1: (g, 2t+{0,1}); a2,a3: (g+8, 2t+{0,1}); a4,a5: (g, 2t+8+{0,1}); a6,a7: (g+8, 2t+8+{0,1})
//   B (16x8, col):  b0,b1: (k = 2t+{0,1}, n = g); b2,b3: (k = 2t+8+{0,1}, n = g)
//   C, D (16x8):    c0,c1: (g, 2t+{0,1}); c2,c3: (g+8, 2t+{0,1})
// Element pairs are packed low half first. The GPU check runs the same self-test on hardware,
// which is what proves these layouts.
#include <cstring>

#include "scheduler.h"

namespace dalle {
namespace emu {

namespace {
float bf16_bits_to_float(uint16_t h) {
  uint32_t u = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
}  // namespace

void mma_m16n8k16_gather(unsigned lane, const unsigned char* post, float a[16][16], float b[16][8], float c[16][8]) {
  uint32_t ra[4], rb[2];
  float rc[4];
  std::memcpy(ra, post, sizeof ra);
  std::memcpy(rb, post + 16, sizeof rb);
  std::memcpy(rc, post + 24, sizeof rc);
  unsigned g = lane / 4, t = lane % 4;
  for (int r = 0; r < 4; ++r) {
    unsigned row = g + ((r & 1) ? 8 : 0), col = 2 * t + ((r & 2) ? 8 : 0);
    a[row][col] = bf16_bits_to_float(static_cast<uint16_t>(ra[r]));
    a[row][col + 1] = bf16_bits_to_float(static_cast<uint16_t>(ra[r] >> 16));
  }
  for (int r = 0; r < 2; ++r) {
    unsigned k = 2 * t + (r ? 8 : 0);
    b[k][g] = bf16_bits_to_float(static_cast<uint16_t>(rb[r]));
    b[k + 1][g] = bf16_bits_to_float(static_cast<uint16_t>(rb[r] >> 16));
  }
  c[g][2 * t] = rc[0];
  c[g][2 * t + 1] = rc[1];
  c[g + 8][2 * t] = rc[2];
  c[g + 8][2 * t + 1] = rc[3];
}

// Products of bf16 values are exact in f32; the sum is accumulated in f32 in k order.
void mma_m16n8k16_compute(const float a[16][16], const float b[16][8], const float c[16][8], float d[16][8]) {
  for (int m = 0; m < 16; ++m)
    for (int n = 0; n < 8; ++n) {
      float acc = c[m][n];
      for (int k = 0; k < 16; ++k) acc += a[m][k] * b[k][n];
      d[m][n] = acc;
    }
}

void mma_m16n8k16_scatter(unsigned lane, const float d[16][8], unsigned char* result) {
  unsigned g = lane / 4, t = lane % 4;
  float rd[4] = {d[g][2 * t], d[g][2 * t + 1], d[g + 8][2 * t], d[g + 8][2 * t + 1]};
  std::memcpy(result, rd, sizeof rd);
}

const char* ldmatrix_complete(const unsigned char* const posts[32], unsigned char* const results[32], int num,
                              bool trans) {
  if (num != 1 && num != 2 && num != 4) return "the number of matrices must be 1, 2 or 4";
  uint16_t m[4][8][8];
  for (int j = 0; j < num; ++j)
    for (int r = 0; r < 8; ++r) {
      const void* row;
      std::memcpy(&row, posts[8 * j + r], sizeof row);
      if (reinterpret_cast<uintptr_t>(row) % 16 != 0) return "a row address is not 16-byte aligned";
      std::memcpy(m[j][r], row, 16);
    }
  for (unsigned l = 0; l < 32; ++l) {
    uint32_t regs[4] = {};
    unsigned row = l / 4, col = 2 * (l % 4);
    for (int j = 0; j < num; ++j) {
      uint16_t lo = trans ? m[j][col][row] : m[j][row][col];
      uint16_t hi = trans ? m[j][col + 1][row] : m[j][row][col + 1];
      regs[j] = uint32_t{lo} | (uint32_t{hi} << 16);
    }
    std::memcpy(results[l], regs, sizeof regs);
  }
  return nullptr;
}

}  // namespace emu
}  // namespace dalle

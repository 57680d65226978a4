// Internals of the emulated device shared by scheduler.cpp, tensor_core.cpp and runtime.cpp.
#pragma once
#include <cstdint>
#include <string>

#include "../../core/status.h"
#include "emu.h"

namespace dalle {
namespace emu {

// Runs every block of spec's grid on the thread pool; on a fault, *error says where and why.
Status run_blocks(const LaunchSpec& spec, uint64_t num_blocks, std::string* error);

// mma.sync m16n8k16 bf16 -> f32 with the PTX ISA's fragment layouts. A lane's post holds
// a[4] (u32: two bf16 each), b[2] (u32) and c[4] (f32), in that order; its result holds d[4].
void mma_m16n8k16_gather(unsigned lane, const unsigned char* post, float a[16][16], float b[16][8], float c[16][8]);
void mma_m16n8k16_compute(const float a[16][16], const float b[16][8], const float c[16][8], float d[16][8]);
void mma_m16n8k16_scatter(unsigned lane, const float d[16][8], unsigned char* result);

// ldmatrix .m8n8 .x1/.x2/.x4 (.trans): posts[l] holds lane l's row address; results[l] gets its
// registers. Returns null, or what was wrong (an unaligned row).
const char* ldmatrix_complete(const unsigned char* const posts[32], unsigned char* const results[32], int num,
                              bool trans);

}  // namespace emu
}  // namespace dalle

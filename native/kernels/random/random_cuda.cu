// CUDA kernels for philox_uint32 and random_uniform (ops, inference and CPU kernels in
// random_cpu.cpp). Philox is a pure function of (seed, word), so these must equal the CPU draws
// bit for bit; test/cuda.test.ts checks that.
#include "../../cuda/device.h"
#include "random.h"

namespace dalle {

namespace {

// One thread per Philox block: it computes the block once and writes the (up to) four elements
// whose words fall in it. Element i reads word offset + i, so blocks straddle element indices
// when offset is not a multiple of 4.
template <typename T, typename Convert>
__global__ void philox_kernel(T* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset, uint64_t first_block,
                              uint64_t num_blocks, Convert convert) {
  for (uint64_t t = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; t < num_blocks;
       t += uint64_t{gridDim.x} * blockDim.x) {
    uint64_t block = first_block + t;
    Philox4 words = philox4x32_10(seed, block);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      uint64_t w = block * 4 + j;
      if (w >= offset && w - offset < static_cast<uint64_t>(n)) out[w - offset] = convert(words.v[j]);
    }
  }
}

struct ToI32 {
  __device__ int32_t operator()(uint32_t w) const { return static_cast<int32_t>(w); }
};
struct ToUnitOpen {
  __device__ float operator()(uint32_t w) const { return u32_to_unit_open(w); }
};

template <typename T, typename Convert>
Status launch_draw(OpArgs& a) {
  uint64_t seed = 0, offset = 0;
  DALLE_RETURN_IF_ERROR(get_seed_offset(a, &seed, &offset));
  int64_t n = a.out[0].numel();
  uint64_t first = offset >> 2, last = (offset + static_cast<uint64_t>(n) - 1) >> 2;
  uint64_t num_blocks = last - first + 1;
  return cuda::launch<philox_kernel<T, Convert>>(a.op, cuda::grid_for(static_cast<int64_t>(num_blocks)), cuda::kBlock,
                                                 0, static_cast<T*>(a.out[0].data), n, seed, offset, first,
                                                 num_blocks, Convert{});
}

Status philox_uint32_cuda(OpArgs& a) { return launch_draw<int32_t, ToI32>(a); }
Status random_uniform_cuda(OpArgs& a) { return launch_draw<float, ToUnitOpen>(a); }

}  // namespace

DALLE_REGISTER_CUDA_KERNEL(philox_uint32, philox_uint32_cuda);
DALLE_REGISTER_CUDA_KERNEL(random_uniform, random_uniform_cuda);

}  // namespace dalle

// Device helpers whose nvcc form is inline PTX, which g++ cannot compile: dynamic shared memory,
// tensor-core mma.sync, ldmatrix and cp.async. Kernels call these in both builds, so a kernel's
// text is the same for nvcc and for the emulated device (which runs them as warp collectives with
// the PTX ISA's fragment layouts: emu/tensor_core.cpp). All need sm_80 or newer.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__) || DALLE_CUDA_EMULATED
namespace dalle {
namespace cuda {

// The block's dynamic shared memory (the launch's smem_bytes), 16-byte aligned.
template <typename T>
__device__ __forceinline__ T* dynamic_shared() {
#if DALLE_CUDA_EMULATED
  return static_cast<T*>(emu::dynamic_shared_base());
#else
  extern __shared__ __align__(16) unsigned char dalle_dynamic_smem[];
  return reinterpret_cast<T*>(dalle_dynamic_smem);
#endif
}

// d = a·b + c for one warp: A 16x16 bf16 (row), B 16x8 bf16 (col), C and D 16x8 f32; fragments
// as in the PTX ISA (mma.m16n8k16, floating point). Every lane of the warp must call it together.
__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                  const float c[4]) {
#if DALLE_CUDA_EMULATED
  emu::WarpPost p{emu::WarpOp::kMmaM16N8K16Bf16, 0xffffffffu};
  std::memcpy(p.data, a, 16);
  std::memcpy(p.data + 16, b, 8);
  std::memcpy(p.data + 24, c, 16);
  emu::WarpResult r;
  emu::warp_collective(p, &r, __builtin_FILE());
  std::memcpy(d, r.data, 16);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

// ldmatrix .m8n8 .b16: lanes 8j..8j+7 give the 16-byte-aligned rows of matrix j in shared memory;
// lane l receives, for each matrix, row l/4, columns 2(l%4) and 2(l%4)+1 (transposed: those rows
// of the transpose). N is 1, 2 or 4.
template <int N, bool Trans = false>
__device__ __forceinline__ void ldmatrix(uint32_t r[N], const void* smem_row) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
#if DALLE_CUDA_EMULATED
  emu::WarpPost p{emu::WarpOp::kLdmatrix, 0xffffffffu, N, Trans ? 1 : 0};
  std::memcpy(p.data, &smem_row, sizeof smem_row);
  emu::WarpResult res;
  emu::warp_collective(p, &res, __builtin_FILE());
  std::memcpy(r, res.data, 4 * N);
#else
  unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem_row));
  if constexpr (N == 1 && !Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(addr));
  else if constexpr (N == 1)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(addr));
  else if constexpr (N == 2 && !Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(addr));
  else if constexpr (N == 2)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(addr));
  else if constexpr (!Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
#endif
}

// cp.async of 16 bytes from global to shared memory (both 16-byte aligned); it lands only once a
// cp_async_wait retires its group, so read it after cp_async_wait and a barrier.
__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src) {
#if DALLE_CUDA_EMULATED
  emu::cp_async(smem_dst, gmem_src, 16);
#else
  unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(addr), "l"(gmem_src));
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if DALLE_CUDA_EMULATED
  emu::cp_async_commit();
#else
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
// Waits until at most Pending of this thread's committed groups are still in flight.
template <int Pending>
__device__ __forceinline__ void cp_async_wait() {
#if DALLE_CUDA_EMULATED
  emu::cp_async_wait(Pending);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
#endif
}

}  // namespace cuda
}  // namespace dalle
#endif

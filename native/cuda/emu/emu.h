// The emulated CUDA device: what a kernel file (*_cuda.cu) sees of CUDA when it is compiled by g++
// as C++ (DALLE_CUDA=EMULATE) instead of by nvcc. Kernel bodies are the same text in both builds;
// this header supplies the built-in variables, __shared__, barriers, warp collectives, atomics and
// math that nvcc would, and emu::launch runs a grid on the CPU: every CUDA thread a fiber, the
// blocks of a grid spread over the thread pool (emu/scheduler.cpp), device memory in host memory
// with guard regions (emu/runtime.cpp, which also stands in for cudart).
//
// How the pieces map:
// - threadIdx/blockIdx/blockDim/gridDim read the running fiber's and block's registers.
// - __shared__ is `static thread_local`: all fibers of a block run on one OS thread, which runs
//   one block at a time, so a thread-local static is exactly one copy per running block. Dynamic
//   shared memory comes from cuda::dynamic_shared<T>() (native/cuda/warp.h) in both builds:
//   `extern __shared__` cannot be expressed here and does not compile in this build.
// - __syncthreads and every *_sync collective suspend the fiber until the threads they name have
//   arrived; misuse (a barrier some threads never reach, a mask naming an exited lane, lanes that
//   disagree on the mask) stops the launch with an error naming kernel, block and thread.
//
// Included through native/cuda/device.h; CUDA's own headers provide dim3, cudaError_t, __half and
// __nv_bfloat16 (host versions), so only what nvcc builds in is defined here.
#pragma once
#if !DALLE_CUDA_EMULATED
#error "emu/emu.h is for the emulated build (DALLE_CUDA=EMULATE) only"
#endif

#include <cuda_runtime_api.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <vector_types.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers nvcc understands and g++ does not ----------------------------------------------
// CUDA's host_defines.h leaves __global__, __device__ and __host__ empty for a host compiler.
#undef __shared__
#define __shared__ static thread_local
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

namespace dalle {
namespace emu {

// The running CUDA thread's and block's built-in registers (set by the scheduler).
struct ThreadRegs {
  uint3 thread_idx;
  unsigned lane;  // threadIdx linearised, mod 32
  unsigned warp;  // threadIdx linearised, div 32
};
struct BlockRegs {
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
extern thread_local const ThreadRegs* t_thread;
extern thread_local BlockRegs t_block;

// ---- block and warp synchronisation (scheduler.cpp) -------------------------------------------
// `site` is "file:line" of the call, so threads waiting at different barriers are told apart.
enum class BarrierKind { kSync, kCount, kAnd, kOr };
int block_barrier(BarrierKind kind, int predicate, const char* site);

enum class WarpOp : uint8_t {
  kSyncwarp,
  kShflIdx,
  kShflUp,
  kShflDown,
  kShflXor,
  kBallot,
  kAny,
  kAll,
  kReduceAdd,
  kReduceMin,
  kReduceMax,
  kMmaM16N8K16Bf16,  // mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
  kLdmatrix,         // ldmatrix.sync.aligned.m8n8.x{1,2,4}{,.trans}.shared.b16
};
// What one lane brings to a collective, and receives from it.
struct WarpPost {
  WarpOp op;
  uint32_t mask;
  int32_t arg = 0;    // srcLane / delta / laneMask; ldmatrix: number of matrices
  int32_t width = 32; // shuffles; ldmatrix: 1 when transposed
  alignas(16) unsigned char data[48] = {};
};
struct WarpResult {
  alignas(16) unsigned char data[48];
};
void warp_collective(const WarpPost& post, WarpResult* result, const char* site);
// The lanes of this warp that reach the same __activemask() before any of them can go further.
unsigned active_mask_at(const char* site);

// Stops the running kernel with an error naming it and the current block and thread (never
// returns inside a kernel; outside one, host code misusing a device helper, it prints and returns).
void kernel_fault(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// The running block's dynamic shared memory (guarded; checked when the block ends).
void* dynamic_shared_base();

// cp.async: copies wait in the issuing thread's groups until cp.async.wait_group retires them,
// so a kernel that reads its destination too early sees stale data here as on a GPU.
void cp_async(void* dst, const void* src, int bytes);
void cp_async_commit();
void cp_async_wait(int keep_pending);

// ---- launches ---------------------------------------------------------------------------------
// One kernel invocation with its (copied, converted) parameters; run() is called once per CUDA
// thread, on that thread's fiber.
class KernelBody {
 public:
  virtual ~KernelBody() = default;
  virtual void run() = 0;
};

struct PointerArg {
  int index;
  const void* ptr;
};

struct LaunchSpec {
  const char* kernel_name;
  const void* kernel;  // identity, for cudaFuncSetAttribute
  dim3 grid, block;
  size_t dynamic_smem;
  cudaStream_t stream;
  KernelBody* body;
  const PointerArg* pointer_args;
  int num_pointer_args;
};
cudaError_t run_grid(const LaunchSpec& spec);

template <typename T>
constexpr bool is_pointer_param() {
  return std::is_pointer<T>::value;
}

// The launch of `kernel(args...)`: arguments are converted to the parameter types as <<<>>> would,
// and every pointer parameter must point into device memory (a host pointer there would fault on
// a GPU; here it would silently work).
template <typename... P, typename... A>
cudaError_t launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  using Params = std::tuple<std::decay_t<P>...>;
  struct Body final : KernelBody {
    void (*fn)(P...);
    Params params;
    Body(void (*f)(P...), A&&... a) : fn(f), params(std::forward<A>(a)...) {}
    // A copy per thread, as every GPU thread gets its own parameters.
    void run() override {
      Params copy = params;
      std::apply(fn, copy);
    }
  } body(kernel, std::forward<A>(args)...);
  PointerArg ptrs[sizeof...(P) + 1];
  int n = 0;
  std::apply(
      [&](const auto&... p) {
        int index = 0;
        auto visit = [&](const auto& v) {
          if constexpr (std::is_pointer<std::decay_t<decltype(v)>>::value) ptrs[n++] = {index, static_cast<const void*>(v)};
          ++index;
        };
        (visit(p), ...);
      },
      body.params);
  LaunchSpec spec{name, reinterpret_cast<const void*>(kernel), grid, block, smem, stream, &body, ptrs, n};
  return run_grid(spec);
}

// ---- runtime extensions (runtime.cpp) ----------------------------------------------------------
// The detailed reason for the last failed call on this host thread ("" if none), taken once.
std::string take_error_detail();
// Narrows a device allocation's usable extent (the caching allocator hands out size classes larger
// than asked for): the bytes past `bytes` become guard bytes too.
void set_allocation_extent(const void* ptr, size_t bytes);

template <typename T>
inline T bits_as(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace emu
}  // namespace dalle

// ---- built-in variables -----------------------------------------------------------------------
#define threadIdx (::dalle::emu::t_thread->thread_idx)
#define blockIdx (::dalle::emu::t_block.block_idx)
#define blockDim (::dalle::emu::t_block.block_dim)
#define gridDim (::dalle::emu::t_block.grid_dim)
constexpr int warpSize = 32;

#define DALLE_EMU_STR2(x) #x
#define DALLE_EMU_STR(x) DALLE_EMU_STR2(x)
#define DALLE_EMU_SITE __FILE__ ":" DALLE_EMU_STR(__LINE__)

// ---- barriers ---------------------------------------------------------------------------------
#define __syncthreads() ((void)::dalle::emu::block_barrier(::dalle::emu::BarrierKind::kSync, 0, DALLE_EMU_SITE))
#define __syncthreads_count(p) ::dalle::emu::block_barrier(::dalle::emu::BarrierKind::kCount, (p) ? 1 : 0, DALLE_EMU_SITE)
#define __syncthreads_and(p) ::dalle::emu::block_barrier(::dalle::emu::BarrierKind::kAnd, (p) ? 1 : 0, DALLE_EMU_SITE)
#define __syncthreads_or(p) ::dalle::emu::block_barrier(::dalle::emu::BarrierKind::kOr, (p) ? 1 : 0, DALLE_EMU_SITE)
#define __syncwarp(...) ::dalle::emu::syncwarp_at(DALLE_EMU_SITE, ##__VA_ARGS__)
#define __shfl_sync(...) ::dalle::emu::shfl_at(DALLE_EMU_SITE, ::dalle::emu::WarpOp::kShflIdx, __VA_ARGS__)
#define __shfl_up_sync(...) ::dalle::emu::shfl_at(DALLE_EMU_SITE, ::dalle::emu::WarpOp::kShflUp, __VA_ARGS__)
#define __shfl_down_sync(...) ::dalle::emu::shfl_at(DALLE_EMU_SITE, ::dalle::emu::WarpOp::kShflDown, __VA_ARGS__)
#define __shfl_xor_sync(...) ::dalle::emu::shfl_at(DALLE_EMU_SITE, ::dalle::emu::WarpOp::kShflXor, __VA_ARGS__)
#define __ballot_sync(mask, pred) ::dalle::emu::vote_at(DALLE_EMU_SITE, ::dalle::emu::WarpOp::kBallot, mask, pred)
#define __any_sync(mask, pred) static_cast<int>(::dalle::emu::vote_at(DALLE_EMU_SITE, ::dalle::emu::WarpOp::kAny, mask, pred))
#define __all_sync(mask, pred) static_cast<int>(::dalle::emu::vote_at(DALLE_EMU_SITE, ::dalle::emu::WarpOp::kAll, mask, pred))
#define __reduce_add_sync(mask, v) ::dalle::emu::reduce_at(DALLE_EMU_SITE, ::dalle::emu::WarpOp::kReduceAdd, mask, v)
#define __reduce_min_sync(mask, v) ::dalle::emu::reduce_at(DALLE_EMU_SITE, ::dalle::emu::WarpOp::kReduceMin, mask, v)
#define __reduce_max_sync(mask, v) ::dalle::emu::reduce_at(DALLE_EMU_SITE, ::dalle::emu::WarpOp::kReduceMax, mask, v)

namespace dalle {
namespace emu {

inline void syncwarp_at(const char* site, unsigned mask = 0xffffffffu) {
  WarpPost p{WarpOp::kSyncwarp, mask};
  WarpResult r;
  warp_collective(p, &r, site);
}

// One exchange for every lane: each posts its value once, the last to arrive hands out results.
template <typename T>
inline T shfl_at(const char* site, WarpOp op, unsigned mask, T var, int lane_arg, int width = 32) {
  static_assert(sizeof(T) <= 16 && std::is_trivially_copyable<T>::value, "shuffle of an unsupported type");
  WarpPost p{op, mask, lane_arg, width};
  std::memcpy(p.data, &var, sizeof(T));
  std::memset(p.data + sizeof(T), 0, sizeof p.data - sizeof(T));
  WarpResult r;
  warp_collective(p, &r, site);
  return bits_as<T>(r.data);
}

inline unsigned vote_at(const char* site, WarpOp op, unsigned mask, int pred) {
  WarpPost p{op, mask};
  int32_t v = pred != 0;
  std::memcpy(p.data, &v, sizeof v);
  WarpResult r;
  warp_collective(p, &r, site);
  return bits_as<unsigned>(r.data);
}

template <typename T>
inline T reduce_at(const char* site, WarpOp op, unsigned mask, T value) {
  static_assert(std::is_same<T, int>::value || std::is_same<T, unsigned>::value, "__reduce_*_sync takes int or unsigned");
  WarpPost p{op, mask};
  p.width = std::is_signed<T>::value ? 1 : 0;
  std::memcpy(p.data, &value, sizeof value);
  WarpResult r;
  warp_collective(p, &r, site);
  return bits_as<T>(r.data);
}

}  // namespace emu
}  // namespace dalle

#define __activemask() ::dalle::emu::active_mask_at(DALLE_EMU_SITE)
inline unsigned __lanemask_lt() { return (1u << ::dalle::emu::t_thread->lane) - 1u; }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
inline void __nanosleep(unsigned) {}

#include "emu_builtins.h"

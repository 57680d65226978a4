// Self-test: broken kernels and refused launches. Each case returns the error its launch
// produced; test/cuda-selftest.test.ts checks that the error names the kernel, and, for misuse,
// the block and thread. Misuse cases run on the emulated device only: on a GPU a divergent barrier
// hangs and an out-of-bounds write corrupts memory (compute-sanitizer's job there). Refusals run on
// both: a GPU must refuse the same launches.
#include "selftest.h"

namespace dalle {
namespace cuda {
namespace selftest {

namespace {

// Threads 16.. skip the barrier the others wait at.
__global__ void broken_divergent_barrier(float* out) {
  if (threadIdx.x < 16) __syncthreads();
  out[threadIdx.x] = 1.0f;
}

// The classic: a bounds check that returns before a barrier.
__global__ void broken_early_return(float* out, int n) {
  int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  __shared__ float s[64];
  s[threadIdx.x] = 1.0f;
  __syncthreads();
  out[i] = s[63 - threadIdx.x];
}

// Odd and even threads wait at different barriers.
__global__ void broken_split_barrier(float* out) {
  if (threadIdx.x % 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

// A full-mask shuffle that only half the warp executes.
__global__ void broken_partial_shuffle(float* out) {
  float v = static_cast<float>(threadIdx.x);
  if (threadIdx.x % 32 < 16) v = __shfl_down_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

// Lanes read from lanes outside the mask they named.
__global__ void broken_shuffle_source(float* out) {
  float v = static_cast<float>(threadIdx.x);
  out[threadIdx.x] = __shfl_sync(0x0000ffffu | (threadIdx.x >= 16 ? 0xffff0000u : 0u), v, 20);
}

// Writes one element past the end of its output.
__global__ void broken_out_of_bounds(float* out, int n) {
  int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) out[i] = 2.0f;  // should be i < n
}

// Writes one element before the start.
__global__ void broken_negative_index(float* out, int n) {
  int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i - 1] = 2.0f;
}

// Writes past its dynamic shared memory.
__global__ void broken_shared_overflow(float* out) {
  float* s = dynamic_shared<float>();
  s[threadIdx.x + 1] = 1.0f;  // the last thread writes one float past the end
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}

// A warp reduction with the wrong shuffle width (16): each half-warp sums only itself. Nothing
// faults; the parity check against the host sum is what catches it, on the emulator as on a GPU.
__global__ void broken_shuffle_width(float* out, const float* in) {
  float v = in[threadIdx.x];
  for (int m = 16; m >= 1; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m, 16);
  out[threadIdx.x] = v;
}

// Reads a neighbour's shared-memory slot with no barrier between its write and the read. Nothing
// faults; the result depends on the order threads run (on a GPU, on timing). The emulator runs a
// thread until it waits, so thread t reads before t + 1 writes (forward schedule), or thread 63
// reads before thread 0 writes (reverse): the parity check fails either way.
// (`salt` differs per run, so what an earlier run left in shared memory never looks right.)
__global__ void broken_missing_barrier(float* out, float salt) {
  __shared__ float s[65];
  s[threadIdx.x] = static_cast<float>(threadIdx.x) + salt;
  if (threadIdx.x == 0) s[64] = 64.0f + salt;
  out[threadIdx.x] = s[threadIdx.x + 1];  // needs __syncthreads() before it
}

__global__ void selftest_noop(float* out) {
  if (out) out[0] = 0.0f;
}

Status run_on(float** buffer, size_t n, const std::function<Status(float*)>& launch_fn) {
  DeviceArray<float> out;
  DALLE_RETURN_IF_ERROR(out.alloc(n));
  *buffer = out.get();
  DALLE_RETURN_IF_ERROR(launch_fn(out.get()));
  std::vector<float> host;
  return out.download(&host);  // a GPU reports a fault here, at the next synchronising copy
}

Status divergent_barrier(std::string*) {
  float* p;
  return run_on(&p, 64, [](float* o) { return launch<broken_divergent_barrier>("selftest", dim3(2), dim3(64), 0, o); });
}
Status early_return(std::string*) {
  float* p;
  return run_on(&p, 100, [](float* o) { return launch<broken_early_return>("selftest", dim3(2), dim3(64), 0, o, 100); });
}
Status split_barrier(std::string*) {
  float* p;
  return run_on(&p, 64, [](float* o) { return launch<broken_split_barrier>("selftest", dim3(1), dim3(64), 0, o); });
}
Status partial_shuffle(std::string*) {
  float* p;
  return run_on(&p, 64, [](float* o) { return launch<broken_partial_shuffle>("selftest", dim3(1), dim3(64), 0, o); });
}
Status shuffle_source(std::string*) {
  float* p;
  return run_on(&p, 32, [](float* o) { return launch<broken_shuffle_source>("selftest", dim3(1), dim3(32), 0, o); });
}
Status out_of_bounds(std::string*) {
  float* p;
  return run_on(&p, 100, [](float* o) { return launch<broken_out_of_bounds>("selftest", dim3(4), dim3(32), 0, o, 100); });
}
Status negative_index(std::string*) {
  float* p;
  return run_on(&p, 100, [](float* o) { return launch<broken_negative_index>("selftest", dim3(4), dim3(32), 0, o, 100); });
}
Status shared_overflow(std::string*) {
  float* p;
  return run_on(&p, 64, [](float* o) {
    return launch<broken_shared_overflow>("selftest", dim3(1), dim3(64), 64 * sizeof(float), o);
  });
}
Status shuffle_width(std::string* info) {
  std::vector<float> in = random_floats(32, 5);
  DeviceArray<float> din, dout;
  DALLE_RETURN_IF_ERROR(din.upload(in));
  DALLE_RETURN_IF_ERROR(dout.alloc(32));
  DALLE_RETURN_IF_ERROR(launch<broken_shuffle_width>("selftest", dim3(1), dim3(32), 0, dout.get(), din.get()));
  std::vector<float> got;
  DALLE_RETURN_IF_ERROR(dout.download(&got));
  double sum = 0;
  for (float x : in) sum += x;
  Status st = compare("broken_shuffle_width: warp sum", got, std::vector<float>(32, static_cast<float>(sum)), 1e-5, 1e-5, info);
  return st;
}
Status missing_barrier(std::string* info) {
  DeviceArray<float> out;
  DALLE_RETURN_IF_ERROR(out.alloc(64));
  static int runs = 0;
  const float salt = static_cast<float>(1000 * ++runs);
  DALLE_RETURN_IF_ERROR(launch<broken_missing_barrier>("selftest", dim3(1), dim3(64), 0, out.get(), salt));
  std::vector<float> got, want(64);
  DALLE_RETURN_IF_ERROR(out.download(&got));
  for (int t = 0; t < 64; ++t) want[t] = static_cast<float>(t + 1) + salt;
  return compare("broken_missing_barrier: neighbour's value", got, want, 0, 0, info);
}
Status host_pointer(std::string*) {
  std::vector<float> host(64);
  return launch<selftest_noop>("selftest", dim3(1), dim3(32), 0, host.data());
}

// ---- refused launches -------------------------------------------------------------------------
Status too_many_threads(std::string*) {
  float* p;
  return run_on(&p, 1, [](float* o) { return launch<selftest_noop>("selftest", dim3(1), dim3(1025), 0, o); });
}
Status block_z_too_deep(std::string*) {
  float* p;
  return run_on(&p, 1, [](float* o) { return launch<selftest_noop>("selftest", dim3(1), dim3(1, 1, 65), 0, o); });
}
Status empty_grid(std::string*) {
  float* p;
  return run_on(&p, 1, [](float* o) { return launch<selftest_noop>("selftest", dim3(0), dim3(32), 0, o); });
}
Status too_much_shared(std::string*) {
  float* p;
  return run_on(&p, 1, [](float* o) { return launch<selftest_noop>("selftest", dim3(1), dim3(32), 300 * 1024, o); });
}

}  // namespace

DALLE_REGISTER_CUDA_SELFTEST(divergent_barrier, SelfTestKind::kMisuse, divergent_barrier);
DALLE_REGISTER_CUDA_SELFTEST(early_return, SelfTestKind::kMisuse, early_return);
DALLE_REGISTER_CUDA_SELFTEST(split_barrier, SelfTestKind::kMisuse, split_barrier);
DALLE_REGISTER_CUDA_SELFTEST(partial_shuffle, SelfTestKind::kMisuse, partial_shuffle);
DALLE_REGISTER_CUDA_SELFTEST(shuffle_source, SelfTestKind::kMisuse, shuffle_source);
DALLE_REGISTER_CUDA_SELFTEST(out_of_bounds, SelfTestKind::kMisuse, out_of_bounds);
DALLE_REGISTER_CUDA_SELFTEST(negative_index, SelfTestKind::kMisuse, negative_index);
DALLE_REGISTER_CUDA_SELFTEST(shared_overflow, SelfTestKind::kMisuse, shared_overflow);
DALLE_REGISTER_CUDA_SELFTEST(shuffle_width, SelfTestKind::kMisuse, shuffle_width);
DALLE_REGISTER_CUDA_SELFTEST(missing_barrier, SelfTestKind::kMisuse, missing_barrier);
DALLE_REGISTER_CUDA_SELFTEST(host_pointer, SelfTestKind::kMisuse, host_pointer);
DALLE_REGISTER_CUDA_SELFTEST(too_many_threads, SelfTestKind::kRefusal, too_many_threads);
DALLE_REGISTER_CUDA_SELFTEST(block_z_too_deep, SelfTestKind::kRefusal, block_z_too_deep);
DALLE_REGISTER_CUDA_SELFTEST(empty_grid, SelfTestKind::kRefusal, empty_grid);
DALLE_REGISTER_CUDA_SELFTEST(too_much_shared, SelfTestKind::kRefusal, too_much_shared);

}  // namespace selftest
}  // namespace cuda
}  // namespace dalle

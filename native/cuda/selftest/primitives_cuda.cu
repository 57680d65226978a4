// Self-test: every device primitive the emulator provides, each against a plain host loop. On a
// GPU the same cases prove that the emulator and the hardware agree.
#include "selftest.h"

namespace dalle {
namespace cuda {
namespace selftest {

namespace {

constexpr unsigned kFull = 0xffffffffu;

// ---- indices ----------------------------------------------------------------------------------

__global__ void selftest_indices_kernel(int* out) {
  unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  int* o = out + 4 * (block * per_block + thread);
  o[0] = static_cast<int>(threadIdx.x + 10 * threadIdx.y + 100 * threadIdx.z);
  o[1] = static_cast<int>(blockIdx.x + 10 * blockIdx.y + 100 * blockIdx.z);
  o[2] = static_cast<int>(blockDim.x + 10 * blockDim.y + 100 * blockDim.z);
  o[3] = static_cast<int>(gridDim.x + 10 * gridDim.y + 100 * gridDim.z + 1000 * warpSize);
}

Status indices(std::string* info) {
  const dim3 grid(3, 2, 2), block(5, 3, 2);
  const unsigned per_block = 30, blocks = 12;
  DeviceArray<int> out;
  DALLE_RETURN_IF_ERROR(out.alloc(4 * per_block * blocks));
  DALLE_RETURN_IF_ERROR(launch<selftest_indices_kernel>("selftest", grid, block, 0, out.get()));
  std::vector<int> got, want;
  DALLE_RETURN_IF_ERROR(out.download(&got));
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 2; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 5; ++tx) {
              want.push_back(static_cast<int>(tx + 10 * ty + 100 * tz));
              want.push_back(static_cast<int>(bx + 10 * by + 100 * bz));
              want.push_back(5 + 30 + 200);
              want.push_back(3 + 20 + 200 + 32000);
            }
  return compare("3-D threadIdx/blockIdx/blockDim/gridDim", got, want, 0, 0, info);
}

// ---- shared memory and barriers ---------------------------------------------------------------

constexpr int kScanBlock = 256;

// Reverses each block's slice through static shared memory, then scans it (Hillis-Steele) in
// dynamic shared memory: both need every barrier.
__global__ void selftest_shared_kernel(float* out, const float* in) {
  __shared__ float tile[kScanBlock];
  float* scan = dynamic_shared<float>();
  const int t = static_cast<int>(threadIdx.x);
  const int base = static_cast<int>(blockIdx.x) * kScanBlock;
  tile[t] = in[base + t];
  __syncthreads();
  scan[t] = tile[kScanBlock - 1 - t];
  __syncthreads();
  for (int step = 1; step < kScanBlock; step *= 2) {
    float add = t >= step ? scan[t - step] : 0.0f;
    __syncthreads();
    scan[t] += add;
    __syncthreads();
  }
  out[base + t] = scan[t];
}

Status shared_memory(std::string* info) {
  const int blocks = 5, n = blocks * kScanBlock;
  std::vector<float> in = random_floats(n, 7);
  DeviceArray<float> din, dout;
  DALLE_RETURN_IF_ERROR(din.upload(in));
  DALLE_RETURN_IF_ERROR(dout.alloc(n));
  DALLE_RETURN_IF_ERROR(launch<selftest_shared_kernel>("selftest", dim3(blocks), dim3(kScanBlock),
                                                       kScanBlock * sizeof(float), dout.get(), din.get()));
  std::vector<float> got, want(n);
  DALLE_RETURN_IF_ERROR(dout.download(&got));
  for (int b = 0; b < blocks; ++b) {
    double acc = 0;
    for (int t = 0; t < kScanBlock; ++t) {
      acc += in[b * kScanBlock + kScanBlock - 1 - t];
      want[b * kScanBlock + t] = static_cast<float>(acc);
    }
  }
  return compare("static + dynamic __shared__, __syncthreads scan", got, want, 1e-4, 1e-5, info);
}

// 64 KiB of dynamic shared memory: over the default 48 KiB, so launch() must opt in first.
__global__ void selftest_big_smem_kernel(float* out, int n) {
  float* s = dynamic_shared<float>();
  for (int i = static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) s[i] = static_cast<float>(i);
  __syncthreads();
  float acc = 0;
  for (int i = static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) acc += s[n - 1 - i];
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

Status big_dynamic_smem(std::string* info) {
  const int n = 16384, threads = 128;  // 64 KiB
  DeviceArray<float> out;
  DALLE_RETURN_IF_ERROR(out.alloc(2 * threads));
  DALLE_RETURN_IF_ERROR(launch<selftest_big_smem_kernel>("selftest", dim3(2), dim3(threads), n * sizeof(float), out.get(), n));
  std::vector<float> got, want(2 * threads);
  DALLE_RETURN_IF_ERROR(out.download(&got));
  for (int t = 0; t < 2 * threads; ++t) {
    double acc = 0;
    for (int i = t % threads; i < n; i += threads) acc += n - 1 - i;
    want[t] = static_cast<float>(acc);
  }
  return compare("64 KiB dynamic shared memory", got, want, 0, 0, info);
}

__global__ void selftest_barrier_votes_kernel(int* out) {
  int t = static_cast<int>(threadIdx.x);
  out[3 * t] = __syncthreads_count(t % 3 == 0);
  out[3 * t + 1] = __syncthreads_and(t < 1000);
  out[3 * t + 2] = __syncthreads_or(t == 77);
}

Status barrier_votes(std::string* info) {
  const int threads = 160;
  DeviceArray<int> out;
  DALLE_RETURN_IF_ERROR(out.alloc(3 * threads));
  DALLE_RETURN_IF_ERROR(launch<selftest_barrier_votes_kernel>("selftest", dim3(1), dim3(threads), 0, out.get()));
  std::vector<int> got, want;
  DALLE_RETURN_IF_ERROR(out.download(&got));
  for (int t = 0; t < threads; ++t) {
    want.push_back(54);  // multiples of 3 below 160
    want.push_back(1);
    want.push_back(1);
  }
  return compare("__syncthreads_count/_and/_or", got, want, 0, 0, info);
}

// ---- warp collectives -------------------------------------------------------------------------

// Per lane: 4 shuffle kinds x 6 widths x 3 lane arguments.
__global__ void selftest_shuffle_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  const int value = 1000 * warp + lane;
  int* o = out + threadIdx.x * 72;
  const int args[3] = {0, 3, 17};
  int k = 0;
  for (int w = 1; w <= 32; w *= 2)
    for (int a : args) {
      o[k++] = __shfl_sync(kFull, value, a + lane / 2, w);
      o[k++] = __shfl_up_sync(kFull, value, static_cast<unsigned>(a), w);
      o[k++] = __shfl_down_sync(kFull, value, static_cast<unsigned>(a), w);
      o[k++] = __shfl_xor_sync(kFull, value, a, w);
    }
}

// CUDA's documented semantics, written as directly as possible.
int shuffle_model(int kind, int lane, int a, int w, int warp) {
  auto v = [&](int l) { return 1000 * warp + l; };
  int seg = lane / w * w;
  switch (kind) {
    case 0: return v(seg + (a + lane / 2) % w);
    case 1: return lane - seg >= a ? v(lane - a) : v(lane);
    case 2: return lane - seg + a < w ? v(lane + a) : v(lane);
    default: {
      int src = lane ^ a;
      return src / w * w > seg ? v(lane) : v(src);
    }
  }
}

Status shuffles(std::string* info) {
  const int threads = 64;
  DeviceArray<int> out;
  DALLE_RETURN_IF_ERROR(out.alloc(threads * 72));
  DALLE_RETURN_IF_ERROR(launch<selftest_shuffle_kernel>("selftest", dim3(1), dim3(threads), 0, out.get()));
  std::vector<int> got, want;
  DALLE_RETURN_IF_ERROR(out.download(&got));
  const int args[3] = {0, 3, 17};
  for (int t = 0; t < threads; ++t)
    for (int w = 1; w <= 32; w *= 2)
      for (int a : args)
        for (int kind = 0; kind < 4; ++kind) want.push_back(shuffle_model(kind, t % 32, a, w, t / 32));
  return compare("__shfl_sync/_up/_down/_xor at widths 1-32", got, want, 0, 0, info);
}

// A warp sum by butterfly, one per warp, and sub-warp sums of 8 lanes (width 8).
__global__ void selftest_warp_sum_kernel(float* out, const float* in) {
  float v = in[blockIdx.x * blockDim.x + threadIdx.x];
  float all = v, part = v;
  for (int m = 16; m >= 1; m /= 2) all += __shfl_xor_sync(kFull, all, m);
  for (int d = 4; d >= 1; d /= 2) part += __shfl_down_sync(kFull, part, static_cast<unsigned>(d), 8);
  unsigned lane = threadIdx.x % 32;
  out[2 * (blockIdx.x * blockDim.x + threadIdx.x)] = all;
  out[2 * (blockIdx.x * blockDim.x + threadIdx.x) + 1] = lane % 8 == 0 ? part : 0.0f;
}

Status warp_sums(std::string* info) {
  const int blocks = 3, threads = 96, n = blocks * threads;
  std::vector<float> in = random_floats(n, 11);
  DeviceArray<float> din, dout;
  DALLE_RETURN_IF_ERROR(din.upload(in));
  DALLE_RETURN_IF_ERROR(dout.alloc(2 * n));
  DALLE_RETURN_IF_ERROR(launch<selftest_warp_sum_kernel>("selftest", dim3(blocks), dim3(threads), 0, dout.get(), din.get()));
  std::vector<float> got, want(2 * n);
  DALLE_RETURN_IF_ERROR(dout.download(&got));
  for (int i = 0; i < n; ++i) {
    double all = 0, part = 0;
    for (int l = 0; l < 32; ++l) all += in[i / 32 * 32 + l];
    for (int l = 0; l < 8; ++l) part += in[i / 8 * 8 + l];
    want[2 * i] = static_cast<float>(all);
    want[2 * i + 1] = i % 8 == 0 ? static_cast<float>(part) : 0.0f;
  }
  return compare("warp and 8-lane sums by shuffle", got, want, 1e-5, 1e-5, info);
}

__global__ void selftest_votes_kernel(unsigned* out) {
  unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  unsigned* o = out + 6 * threadIdx.x;
  bool pred = (lane * 7 + warp) % 5 < 2;
  o[0] = __ballot_sync(kFull, pred);
  o[1] = static_cast<unsigned>(__any_sync(kFull, lane == 31 && warp == 1));
  o[2] = static_cast<unsigned>(__all_sync(kFull, lane < 32));
  o[3] = static_cast<unsigned>(__all_sync(kFull, pred));
  o[4] = __ballot_sync(lane < 16 ? 0x0000ffffu : 0xffff0000u, pred);  // two half-warp groups
  unsigned active = 0;
  if (lane < 13) active = __activemask();
  __syncwarp();
  o[5] = active;
}

Status votes(std::string* info) {
  const int threads = 64;
  DeviceArray<unsigned> out;
  DALLE_RETURN_IF_ERROR(out.alloc(6 * threads));
  DALLE_RETURN_IF_ERROR(launch<selftest_votes_kernel>("selftest", dim3(1), dim3(threads), 0, out.get()));
  std::vector<unsigned> got, want;
  DALLE_RETURN_IF_ERROR(out.download(&got));
  for (unsigned t = 0; t < threads; ++t) {
    unsigned lane = t % 32, warp = t / 32, ballot = 0;
    for (unsigned l = 0; l < 32; ++l)
      if ((l * 7 + warp) % 5 < 2) ballot |= 1u << l;
    want.push_back(ballot);
    want.push_back(warp == 1 ? 1u : 0u);
    want.push_back(1u);
    want.push_back(ballot == kFull ? 1u : 0u);
    want.push_back(ballot & (lane < 16 ? 0x0000ffffu : 0xffff0000u));
    want.push_back(lane < 13 ? 0x1fffu : 0u);
  }
  return compare("__ballot_sync/__any_sync/__all_sync/__activemask", got, want, 0, 0, info);
}

// ---- atomics ----------------------------------------------------------------------------------

__global__ void selftest_atomics_kernel(int* hist, float* fsum, unsigned* maxv, const int* keys, int n) {
  __shared__ int local[16];
  if (threadIdx.x < 16) local[threadIdx.x] = 0;
  __syncthreads();
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += static_cast<int>(gridDim.x * blockDim.x)) {
    atomicAdd(&local[keys[i] & 15], 1);
    atomicAdd(fsum, 0.25f);
    atomicMax(maxv, static_cast<unsigned>(keys[i]));
  }
  __syncthreads();
  if (threadIdx.x < 16) atomicAdd(&hist[threadIdx.x], local[threadIdx.x]);
}

Status atomics(std::string* info) {
  const int n = 5000;
  std::vector<int> keys(n);
  for (int i = 0; i < n; ++i) keys[i] = (i * 7919) % 1009;
  DeviceArray<int> dkeys, hist;
  DeviceArray<float> fsum;
  DeviceArray<unsigned> maxv;
  DALLE_RETURN_IF_ERROR(dkeys.upload(keys));
  DALLE_RETURN_IF_ERROR(hist.alloc(16));
  DALLE_RETURN_IF_ERROR(fsum.alloc(1));
  DALLE_RETURN_IF_ERROR(maxv.alloc(1));
  DALLE_RETURN_IF_ERROR(launch<selftest_atomics_kernel>("selftest", dim3(7), dim3(64), 0, hist.get(), fsum.get(),
                                                        maxv.get(), dkeys.get(), n));
  std::vector<int> got, want(16, 0);
  std::vector<float> gsum;
  std::vector<unsigned> gmax;
  DALLE_RETURN_IF_ERROR(hist.download(&got));
  DALLE_RETURN_IF_ERROR(fsum.download(&gsum));
  DALLE_RETURN_IF_ERROR(maxv.download(&gmax));
  unsigned m = 0;
  for (int k : keys) {
    want[k & 15]++;
    m = static_cast<unsigned>(k) > m ? static_cast<unsigned>(k) : m;
  }
  DALLE_RETURN_IF_ERROR(compare("shared and global atomicAdd (int)", got, want, 0, 0, info));
  DALLE_RETURN_IF_ERROR(compare("global atomicAdd (float)", gsum, std::vector<float>{0.25f * n}, 0, 0, info));
  return compare("global atomicMax (unsigned)", gmax, std::vector<unsigned>{m}, 0, 0, info);
}

// ---- math and 16-bit floats -------------------------------------------------------------------

__global__ void selftest_math_kernel(float* out, const float* in, int n) {
  int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  float x = in[i];
  float* o = out + 8 * i;
  o[0] = expf(x);
  o[1] = tanhf(x);
  o[2] = logf(fabsf(x) + 1.0f);
  o[3] = rsqrtf(fabsf(x) + 0.5f);
  o[4] = __expf(x);
  o[5] = erff(x);
  o[6] = __bfloat162float(__float2bfloat16(x));
  o[7] = __half2float(__float2half(x));
}

float bf16_round(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;  // round to nearest even
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

Status math(std::string* info) {
  const int n = 1000;
  std::vector<float> in = random_floats(n, 3, -4.0f, 4.0f);
  DeviceArray<float> din, dout;
  DALLE_RETURN_IF_ERROR(din.upload(in));
  DALLE_RETURN_IF_ERROR(dout.alloc(8 * n));
  DALLE_RETURN_IF_ERROR(launch<selftest_math_kernel>("selftest", dim3(4), dim3(256), 0, dout.get(), din.get(), n));
  std::vector<float> got;
  DALLE_RETURN_IF_ERROR(dout.download(&got));
  std::vector<float> g[8], w[8];
  for (int i = 0; i < n; ++i) {
    double x = in[i];
    double ref[8] = {std::exp(x), std::tanh(x), std::log(std::fabs(x) + 1), 1 / std::sqrt(std::fabs(x) + 0.5),
                     std::exp(x), std::erf(x), bf16_round(in[i]), x};
    for (int k = 0; k < 8; ++k) {
      g[k].push_back(got[8 * i + k]);
      w[k].push_back(static_cast<float>(ref[k]));
    }
  }
  // CUDA Math API error bounds: expf 2 ulp, tanhf 2 ulp, logf 1 ulp, rsqrtf 2 ulp, erff 2 ulp;
  // __expf's is 2 + 1.16·|x| ulp (here |x| <= 4).
  DALLE_RETURN_IF_ERROR(compare("expf", g[0], w[0], 0, 3e-7, info));
  DALLE_RETURN_IF_ERROR(compare("tanhf", g[1], w[1], 1e-7, 3e-7, info));
  DALLE_RETURN_IF_ERROR(compare("logf", g[2], w[2], 1e-7, 2e-7, info));
  DALLE_RETURN_IF_ERROR(compare("rsqrtf", g[3], w[3], 0, 3e-7, info));
  DALLE_RETURN_IF_ERROR(compare("__expf", g[4], w[4], 0, 1e-6, info));
  DALLE_RETURN_IF_ERROR(compare("erff", g[5], w[5], 1e-7, 3e-7, info));
  DALLE_RETURN_IF_ERROR(compare("float -> bf16 -> float (round to nearest even)", g[6], w[6], 0, 0, info));
  return compare("float -> half -> float", g[7], w[7], 6e-5, 1e-3, info);
}

}  // namespace

DALLE_REGISTER_CUDA_SELFTEST(indices, SelfTestKind::kPrimitive, indices);
DALLE_REGISTER_CUDA_SELFTEST(shared_memory, SelfTestKind::kPrimitive, shared_memory);
DALLE_REGISTER_CUDA_SELFTEST(big_dynamic_smem, SelfTestKind::kPrimitive, big_dynamic_smem);
DALLE_REGISTER_CUDA_SELFTEST(barrier_votes, SelfTestKind::kPrimitive, barrier_votes);
DALLE_REGISTER_CUDA_SELFTEST(shuffles, SelfTestKind::kPrimitive, shuffles);
DALLE_REGISTER_CUDA_SELFTEST(warp_sums, SelfTestKind::kPrimitive, warp_sums);
DALLE_REGISTER_CUDA_SELFTEST(votes, SelfTestKind::kPrimitive, votes);
DALLE_REGISTER_CUDA_SELFTEST(atomics, SelfTestKind::kPrimitive, atomics);
DALLE_REGISTER_CUDA_SELFTEST(math, SelfTestKind::kPrimitive, math);

}  // namespace selftest
}  // namespace cuda
}  // namespace dalle

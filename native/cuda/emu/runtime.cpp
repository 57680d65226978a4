// The emulated device's stand-in for cudart: the calls native/cuda makes (device query, memory,
// copies, streams, events, launches), defined against CUDA's own declarations in
// cuda_runtime_api.h, so the backend compiles unchanged and this build links no cudart.
//
// Device memory is host memory with guard bytes around every allocation (and past the extent the
// caching allocator asked for); a launch checks the guards of every allocation its pointer
// arguments point into, so an out-of-bounds write is an error naming the kernel and the argument.
// Pointer arguments and copies must lie inside live allocations. Launches run to completion when
// they are made, serialised as on one stream, so events and synchronisation are trivially met.
// Unlike a GPU's, a fault is not sticky: the next call works.
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "../../core/threadpool.h"
#include "emu.h"
#include "scheduler.h"

namespace dalle {
namespace emu {

namespace {

constexpr size_t kAlign = 256;  // cudaMalloc's alignment
constexpr size_t kGuard = 256;  // guard bytes on each side (a multiple of 8)
constexpr unsigned char kGuardByte = 0xa5;
// Fresh device memory reads as NaN (0xffffffff), not as zeros: a kernel that reads what nobody
// wrote shows up in a parity test instead of passing by luck.
constexpr unsigned char kFreshByte = 0xff;
constexpr size_t kDefaultSmem = 48 * 1024;      // without cudaFuncAttributeMaxDynamicSharedMemorySize
constexpr size_t kMaxSmemOptin = 227 * 1024;    // sm_90: sharedMemPerBlockOptin

struct Allocation {
  unsigned char* raw;
  size_t size;    // what cudaMalloc was asked for
  size_t extent;  // bytes in use (set_allocation_extent), <= size
  size_t span;    // size rounded up to kAlign
};

struct Device {
  std::mutex mu;  // allocations, streams, events
  std::map<uintptr_t, Allocation> allocs;
  size_t used = 0;
  size_t limit = 0;
  std::set<const void*> streams, events;
  std::map<const void*, size_t> smem_limit;  // per kernel, from cudaFuncSetAttribute
  std::mutex launch_mu;  // one grid at a time: the device executes one stream in order
};

Device& device() {
  // Leaked on purpose: Storage destructors may free device memory during static destruction.
  static Device* d = [] {
    auto* dev = new Device();
    size_t mb = 4096;
    if (const char* env = std::getenv("DALLE_CUDA_EMU_MEMORY_MB")) {
      long v = std::strtol(env, nullptr, 10);
      if (v > 0) mb = static_cast<size_t>(v);
    }
    dev->limit = mb << 20;
    return dev;
  }();
  return *d;
}

thread_local cudaError_t t_last_error = cudaSuccess;
thread_local std::string t_error_detail;

cudaError_t fail(cudaError_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
cudaError_t fail(cudaError_t code, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  t_last_error = code;
  t_error_detail = buf;
  return code;
}

bool cpu_has_fma() { return __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2"); }

// The allocation holding [p, p + bytes), or null. One-past-the-end pointers count as inside.
const Allocation* find_locked(Device& d, const void* p, size_t bytes) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = d.allocs.upper_bound(a);
  if (it == d.allocs.begin()) return nullptr;
  --it;
  const Allocation& al = it->second;
  if (a < it->first || a + bytes > it->first + al.size) return nullptr;
  return &al;
}

void fill_guards(const Allocation& a) {
  unsigned char* user = a.raw + kGuard;
  std::memset(a.raw, kGuardByte, kGuard);
  std::memset(user + a.extent, kGuardByte, a.span - a.extent + kGuard);
}

// First index in [p, p + n) whose byte is not kGuardByte, or n; eight bytes at a time.
size_t first_damaged(const unsigned char* p, size_t n) {
  size_t i = 0;
  for (; i < n && (reinterpret_cast<uintptr_t>(p + i) & 7) != 0; ++i)
    if (p[i] != kGuardByte) return i;
  const uint64_t pattern = 0x0101010101010101ull * kGuardByte;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w != pattern) break;
  }
  for (; i < n; ++i)
    if (p[i] != kGuardByte) return i;
  return n;
}

// A write past the end lands at its start; past a huge size class's slack only the first
// kSlackChecked bytes are looked at, so a launch costs the same whatever the allocations' sizes.
constexpr size_t kSlackChecked = 4096;

// Offset from the start of the allocation's user memory of the first damaged guard byte (negative:
// before it; 1 + offset past the extent: after it), or 0 when the guards are intact.
long damaged_guard(const Allocation& a) {
  size_t i = first_damaged(a.raw, kGuard);
  if (i < kGuard) return static_cast<long>(i) - static_cast<long>(kGuard);
  const unsigned char* tail = a.raw + kGuard + a.extent;
  size_t slack = a.span - a.extent;
  size_t head = slack < kSlackChecked ? slack : kSlackChecked;
  i = first_damaged(tail, head);
  if (i < head) return static_cast<long>(a.extent + i) + 1;  // +1: never 0
  i = first_damaged(tail + slack, kGuard);
  if (i < kGuard) return static_cast<long>(a.extent + slack + i) + 1;
  return 0;
}

bool valid_stream_locked(Device& d, cudaStream_t s) {
  return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread || d.streams.count(s) > 0;
}

cudaError_t check_copy_range(Device& d, const void* p, size_t bytes, bool device_side, const char* what) {
  if (!device_side) return cudaSuccess;
  if (!find_locked(d, p, bytes))
    return fail(cudaErrorInvalidValue, "%s: [%p, +%zu bytes) is not inside one device allocation", what, p, bytes);
  return cudaSuccess;
}

cudaError_t copy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  bool dst_dev = false, src_dev = false;
  switch (kind) {
    case cudaMemcpyHostToHost: break;
    case cudaMemcpyHostToDevice: dst_dev = true; break;
    case cudaMemcpyDeviceToHost: src_dev = true; break;
    case cudaMemcpyDeviceToDevice: dst_dev = src_dev = true; break;
    case cudaMemcpyDefault:
      dst_dev = find_locked(d, dst, count) != nullptr;
      src_dev = find_locked(d, src, count) != nullptr;
      break;
    default: return fail(cudaErrorInvalidMemcpyDirection, "cudaMemcpy: kind %d", static_cast<int>(kind));
  }
  if (count == 0) return cudaSuccess;
  if (cudaError_t e = check_copy_range(d, dst, count, dst_dev, "cudaMemcpy destination")) return e;
  if (cudaError_t e = check_copy_range(d, src, count, src_dev, "cudaMemcpy source")) return e;
  std::memmove(dst, src, count);
  return cudaSuccess;
}

cudaError_t memset_device(void* p, int value, size_t count) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (count == 0) return cudaSuccess;
  if (cudaError_t e = check_copy_range(d, p, count, true, "cudaMemset")) return e;
  std::memset(p, value, count);
  return cudaSuccess;
}

std::string dim_text(dim3 v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "(%u,%u,%u)", v.x, v.y, v.z);
  return buf;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Event {
  double ms = 0;
  bool recorded = false;
};

}  // namespace

std::string take_error_detail() {
  std::string s;
  s.swap(t_error_detail);
  return s;
}

void set_allocation_extent(const void* ptr, size_t bytes) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.allocs.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == d.allocs.end()) return;
  it->second.extent = bytes < it->second.size ? bytes : it->second.size;
  fill_guards(it->second);
}

cudaError_t run_grid(const LaunchSpec& spec) {
  const dim3 g = spec.grid, b = spec.block;
  const char* k = spec.kernel_name;
  uint64_t threads = uint64_t{b.x} * b.y * b.z;
  if (g.x == 0 || g.y == 0 || g.z == 0 || threads == 0)
    return fail(cudaErrorInvalidConfiguration, "kernel %s: empty launch, grid %s, block %s", k, dim_text(g).c_str(),
                dim_text(b).c_str());
  if (threads > 1024 || b.x > 1024 || b.y > 1024 || b.z > 64)
    return fail(cudaErrorInvalidConfiguration,
                "kernel %s: block %s has %llu threads; a block has at most 1024 (x, y <= 1024, z <= 64)", k,
                dim_text(b).c_str(), static_cast<unsigned long long>(threads));
  if (g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    return fail(cudaErrorInvalidConfiguration, "kernel %s: grid %s is larger than x < 2^31, y and z <= 65535", k,
                dim_text(g).c_str());
  Device& d = device();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    size_t smem_max = kDefaultSmem;
    auto lim = d.smem_limit.find(spec.kernel);
    if (lim != d.smem_limit.end()) smem_max = lim->second;
    if (spec.dynamic_smem > smem_max)
      return fail(cudaErrorInvalidValue,
                  "kernel %s: %zu bytes of dynamic shared memory, over the %zu allowed (more than 48 KiB needs "
                  "cudaFuncSetAttribute(MaxDynamicSharedMemorySize), at most %zu on sm_90)",
                  k, spec.dynamic_smem, smem_max, kMaxSmemOptin);
    if (!valid_stream_locked(d, spec.stream)) return fail(cudaErrorInvalidResourceHandle, "kernel %s: invalid stream", k);
    for (int i = 0; i < spec.num_pointer_args; ++i) {
      const void* p = spec.pointer_args[i].ptr;
      if (!p) continue;
      if (!find_locked(d, p, 0))
        return fail(cudaErrorIllegalAddress,
                    "kernel %s: argument %d is %p, which is not device memory (a host pointer passed to a kernel)", k,
                    spec.pointer_args[i].index, p);
    }
  }
  std::lock_guard<std::mutex> launch(d.launch_mu);
  std::string error;
  uint64_t blocks = uint64_t{g.x} * g.y * g.z;
  Status st = run_blocks(spec, blocks, &error);
  if (!st.ok()) return fail(cudaErrorLaunchFailure, "%s", error.c_str());
  // Every allocation's guards: a write far out of one argument's bounds lands in another's.
  std::lock_guard<std::mutex> lock(d.mu);
  for (auto& [base, a] : d.allocs) {
    long off = damaged_guard(a);
    if (off == 0) continue;
    fill_guards(a);  // reported once
    int arg = -1;
    for (int i = 0; i < spec.num_pointer_args && arg < 0; ++i)
      if (find_locked(d, spec.pointer_args[i].ptr, 0) == &a) arg = spec.pointer_args[i].index;
    char which[96];
    if (arg >= 0) std::snprintf(which, sizeof which, "the %zu-byte allocation argument %d points into", a.extent, arg);
    else std::snprintf(which, sizeof which, "a %zu-byte allocation no argument points into", a.extent);
    if (off < 0)
      return fail(cudaErrorIllegalAddress, "kernel %s: out-of-bounds write %ld byte(s) before the start of %s", k, -off,
                  which);
    long past = off - 1 - static_cast<long>(a.extent);  // 0: the first byte after the end
    if (past == 0) return fail(cudaErrorIllegalAddress, "kernel %s: out-of-bounds write just past the end of %s", k, which);
    return fail(cudaErrorIllegalAddress, "kernel %s: out-of-bounds write %ld byte(s) past the end of %s", k, past, which);
  }
  return cudaSuccess;
}

}  // namespace emu
}  // namespace dalle

// ---- cudart ---------------------------------------------------------------------------------
using dalle::emu::device;
using dalle::emu::fail;
using dalle::emu::t_last_error;

cudaError_t cudaGetLastError() {
  cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last_error; }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNotSupported: return "operation not supported";
    default: return "unknown error";
  }
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 0;
  if (!dalle::emu::cpu_has_fma())
    return fail(cudaErrorNoDevice, "the emulated device runs kernels compiled for AVX2 and FMA, which this CPU lacks");
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) {
  return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "the emulated device is device 0 only");
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int dev) {
  if (dev != 0) return fail(cudaErrorInvalidDevice, "the emulated device is device 0 only");
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "Emulated CUDA device (%d CPU threads)",
                dalle::ThreadPool::global().num_threads());
  prop->totalGlobalMem = device().limit;
  prop->sharedMemPerBlock = dalle::emu::kDefaultSmem;
  prop->sharedMemPerBlockOptin = dalle::emu::kMaxSmemOptin;
  prop->sharedMemPerMultiprocessor = 228 * 1024;
  prop->regsPerBlock = 65536;
  prop->regsPerMultiprocessor = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 65536;
  prop->major = 9;  // what the kernels are written for (sm_90a); the emulator runs every instruction it has
  prop->minor = 0;
  prop->multiProcessorCount = dalle::ThreadPool::global().num_threads();
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->maxBlocksPerMultiProcessor = 32;
  prop->unifiedAddressing = 1;
  prop->concurrentKernels = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev) {
  cudaDeviceProp p;
  if (cudaError_t e = cudaGetDeviceProperties(&p, dev)) return e;
  switch (attr) {
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(p.sharedMemPerBlockOptin); break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    default: return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute %d is not emulated", static_cast<int>(attr));
  }
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t size) {
  using namespace dalle::emu;
  *ptr = nullptr;
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  size_t span = (size + kAlign - 1) / kAlign * kAlign;
  if (span == 0) span = kAlign;
  if (size > d.limit || d.used + span > d.limit)
    return fail(cudaErrorMemoryAllocation, "cudaMalloc(%zu): the emulated device has %zu of %zu bytes free", size,
                d.limit - d.used, d.limit);
  auto* raw = static_cast<unsigned char*>(std::aligned_alloc(kAlign, span + 2 * kGuard));
  if (!raw) return fail(cudaErrorMemoryAllocation, "cudaMalloc(%zu): host memory exhausted", size);
  Allocation a{raw, size, size, span};
  std::memset(raw + kGuard, kFreshByte, size);
  fill_guards(a);
  d.allocs.emplace(reinterpret_cast<uintptr_t>(raw + kGuard), a);
  d.used += span;
  *ptr = raw + kGuard;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  using namespace dalle::emu;
  if (!ptr) return cudaSuccess;
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.allocs.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == d.allocs.end()) return fail(cudaErrorInvalidDevicePointer, "cudaFree(%p): not a live allocation", ptr);
  d.used -= it->second.span;
  std::free(it->second.raw);
  d.allocs.erase(it);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  *free_bytes = d.limit - d.used;
  *total = d.limit;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  return dalle::emu::copy(dst, src, count, kind);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t) {
  return dalle::emu::copy(dst, src, count, kind);
}
cudaError_t cudaMemset(void* p, int value, size_t count) { return dalle::emu::memset_device(p, value, count); }
cudaError_t cudaMemsetAsync(void* p, int value, size_t count, cudaStream_t) {
  return dalle::emu::memset_device(p, value, count);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  *s = reinterpret_cast<cudaStream_t>(new char(0));
  d.streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.streams.erase(s)) return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: not a stream");
  delete reinterpret_cast<char*>(s);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  return dalle::emu::valid_stream_locked(d, s) ? cudaSuccess
                                                : fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: not a stream");
}
cudaError_t cudaStreamQuery(cudaStream_t s) { return cudaStreamSynchronize(s); }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t, unsigned int) { return cudaStreamSynchronize(s); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  auto* ev = new dalle::emu::Event();
  d.events.insert(ev);
  *e = reinterpret_cast<cudaEvent_t>(ev);
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.events.erase(e)) return fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy: not an event");
  delete reinterpret_cast<dalle::emu::Event*>(e);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.events.count(e)) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: not an event");
  auto* ev = reinterpret_cast<dalle::emu::Event*>(e);
  ev->ms = dalle::emu::now_ms();
  ev->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  return d.events.count(e) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: not an event");
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return cudaEventSynchronize(e); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.events.count(start) || !d.events.count(end))
    return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: not an event");
  auto* a = reinterpret_cast<dalle::emu::Event*>(start);
  auto* b = reinterpret_cast<dalle::emu::Event*>(end);
  if (!a->recorded || !b->recorded) return fail(cudaErrorNotReady, "cudaEventElapsedTime: an event was never recorded");
  *ms = static_cast<float>(b->ms - a->ms);
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  auto& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;  // carve-out hints: nothing to do
  if (value < 0 || static_cast<size_t>(value) > dalle::emu::kMaxSmemOptin)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: %d bytes of dynamic shared memory, at most %zu on sm_90",
                value, dalle::emu::kMaxSmemOptin);
  d.smem_limit[func] = static_cast<size_t>(value);
  return cudaSuccess;
}

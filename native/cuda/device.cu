// Device discovery, the process's stream, and the device allocator installed into core/storage.
// Nothing here may abort: a machine without a driver or a device is an ordinary case (CI, this
// project's build machine), reported through CudaInfo.error and typed errors.
#include "device.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../core/backend.h"
#include "../core/storage.h"
#include "cublaslt.h"

namespace dalle {
namespace cuda {

Status check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  // Reset the last-error slot (a no-op for sticky errors, which poison the context for good).
  (void)cudaGetLastError();
#if DALLE_CUDA_EMULATED
  // The emulator knows more than an error code: which kernel, block and thread, and why.
  std::string detail = emu::take_error_detail();
  if (!detail.empty())
    return make_status(StatusCode::kCudaError, "%s: %s (%s): %s", what, cudaGetErrorString(err), cudaGetErrorName(err),
                       detail.c_str());
#endif
  return make_status(StatusCode::kCudaError, "%s: %s (%s)", what, cudaGetErrorString(err),
                     cudaGetErrorName(err));
}

Status launch_error(cudaError_t err, const char* op, const char* kernel) {
  std::string what = std::string(op) + " (kernel " + kernel + ")";
  return check(err, what.c_str());
}

std::string kernel_name_from_signature(const char* pretty) {
  std::string s(pretty);
  size_t at = s.find("Kernel = ");
  if (at == std::string::npos) return s;
  s = s.substr(at + 9);
  // The template argument ends at the first ';' or ']' outside angle brackets.
  int depth = 0;
  size_t end = 0;
  for (; end < s.size(); ++end) {
    char c = s[end];
    if (c == '<') ++depth;
    else if (c == '>') --depth;
    else if (depth == 0 && (c == ';' || c == ']')) break;
  }
  s = s.substr(0, end);
  for (const char* noise : {"(& ", "&"}) {
    if (s.rfind(noise, 0) == 0) s = s.substr(std::strlen(noise));
  }
  if (!s.empty() && s.back() == ')' && s.find('(') == std::string::npos) s.pop_back();
  // Namespaces say nothing the kernel's own name does not: drop dalle:: and anonymous ones.
  for (std::string prefix : {"{anonymous}::", "(anonymous namespace)::", "dalle::"}) {
    for (size_t p; (p = s.find(prefix)) != std::string::npos;) s.erase(p, prefix.size());
  }
  for (size_t p; (p = s.find("_GLOBAL__N_")) != std::string::npos;) {
    size_t q = s.find("::", p);
    s.erase(p, q == std::string::npos ? std::string::npos : q + 2 - p);
  }
  return s;
}

cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    // A blocking stream (not cudaStreamNonBlocking): should anything ever run on the legacy
    // default stream (a library, a stray cudaMemcpy), it stays ordered with our work.
    if (cudaStreamCreateWithFlags(&created, cudaStreamDefault) != cudaSuccess) {
      (void)cudaGetLastError();
      return static_cast<cudaStream_t>(nullptr);
    }
    return created;
  }();
  return s;
}

namespace {

// ---- discovery ------------------------------------------------------------------------------

struct Discovery {
  int device_count = 0;
  std::string device_name;
  std::string error;
};

// Our cubins are sm_80 and sm_90a, plus compute_80 PTX that the driver JIT-compiles for newer
// GPUs; anything older than Ampere cannot run them.
constexpr int kMinMajor = 8;

std::string no_device_reason(cudaError_t err) {
#if DALLE_CUDA_EMULATED
  return "emulated device: " + emu::take_error_detail();
#endif
  std::string msg = std::string(cudaGetErrorString(err)) + " (" + cudaGetErrorName(err) + ")";
  if (err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice) {
    // cudart says "driver version is insufficient" when there is no driver at all; say which.
    void* h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!h) return "no NVIDIA driver found (libcuda.so.1 cannot be loaded): " + msg;
    dlclose(h);
    if (err == cudaErrorInsufficientDriver) {
      int drv = 0;
      (void)cudaDriverGetVersion(&drv);
      char buf[160];
      std::snprintf(buf, sizeof buf, "; the driver supports CUDA %d.%d, this build needs %d.%d", drv / 1000,
                    (drv % 1000) / 10, CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10);
      msg += buf;
    }
  }
  return msg;
}

const Discovery& discover() {
  static const Discovery d = [] {
    Discovery r;
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      r.error = no_device_reason(err);
      return r;
    }
    if (count == 0) {
      r.error = "no CUDA device is visible (check CUDA_VISIBLE_DEVICES)";
      return r;
    }
    cudaDeviceProp prop;
    err = cudaGetDeviceProperties(&prop, 0);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      r.error = "cudaGetDeviceProperties(0): " + std::string(cudaGetErrorString(err));
      return r;
    }
    char name[320];
    std::snprintf(name, sizeof name, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
                  static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
    r.device_name = name;
    if (prop.major < kMinMajor) {
      r.error = "device 0 is " + r.device_name + "; this build needs compute capability 8.0 or newer";
      return r;
    }
    // Only device 0 is used for now; the count says how many could be.
    r.device_count = count;
    return r;
  }();
  return d;
}

// ---- caching allocator ----------------------------------------------------------------------
//
// cudaMalloc/cudaFree are slow (cudaFree synchronises the whole device), and a training step
// frees and reallocates the same activation sizes every time. Freed blocks are kept per size
// class and handed out again. Reuse is safe without events because all work runs on one stream:
// a block freed while a kernel still reads it is only written by work enqueued later. Set
// DALLE_CUDA_CACHE=0 to free eagerly (for compute-sanitizer, which then sees use-after-free).

class CachingAllocator {
 public:
  CachingAllocator() {
    const char* env = std::getenv("DALLE_CUDA_CACHE");
    caching_ = !(env && env[0] == '0');
  }

  Status alloc(size_t bytes, void** out) {
    size_t cls = size_class(bytes);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(cls);
    if (it != free_.end() && !it->second.empty()) {
      *out = it->second.back();
      it->second.pop_back();
      cached_ -= cls;
#if DALLE_CUDA_EMULATED
      // Bytes of the size class beyond this request become guard bytes again.
      emu::set_allocation_extent(*out, bytes);
#endif
      live_[*out] = cls;
      return Status::Ok();
    }
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, cls);
    if (err == cudaErrorMemoryAllocation && cached_ > 0) {
      (void)cudaGetLastError();
      release_cached_locked();
      err = cudaMalloc(&p, cls);
    }
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      (void)cudaMemGetInfo(&free_b, &total_b);
      (void)cudaGetLastError();
      return make_status(StatusCode::kOutOfMemory,
                         "cudaMalloc(%zu bytes): %s (%zu MiB free of %zu MiB)", cls,
                         cudaGetErrorString(err), free_b >> 20, total_b >> 20);
    }
    DALLE_RETURN_IF_ERROR(check(err, "cudaMalloc"));
#if DALLE_CUDA_EMULATED
    emu::set_allocation_extent(p, bytes);
#endif
    live_[p] = cls;
    *out = p;
    return Status::Ok();
  }

  void free(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours; freeing it could only do harm
    size_t cls = it->second;
    live_.erase(it);
    if (caching_) {
      free_[cls].push_back(p);
      cached_ += cls;
    } else {
      // Errors here (e.g. the runtime already unloaded at process exit) have nowhere to go.
      if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
    }
  }

  void release_cached() {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached_locked();
  }

 private:
  // Four classes per power of two (at most 25% slack), 512-byte granularity below 4 KiB.
  static size_t size_class(size_t bytes) {
    if (bytes <= 4096) return (bytes + 511) / 512 * 512;
    size_t top = size_t{1} << (63 - __builtin_clzll(bytes));
    size_t step = top / 4;
    return (bytes + step - 1) / step * step;
  }

  void release_cached_locked() {
    for (auto& kv : free_)
      for (void* p : kv.second)
        if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
    free_.clear();
    cached_ = 0;
  }

  std::mutex mu_;
  bool caching_ = true;
  size_t cached_ = 0;
  std::unordered_map<void*, size_t> live_;
  std::unordered_map<size_t, std::vector<void*>> free_;
};

// Leaked on purpose: Storage destructors may run during static destruction.
CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator();
  return *a;
}

Status device_alloc(size_t bytes, void** out) { return allocator().alloc(bytes, out); }
void device_free(void* p) { allocator().free(p); }

Status device_copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return Status::Ok();
  bool to_host = dst_dev == Device::kCPU, from_host = src_dev == Device::kCPU;
  cudaMemcpyKind kind = to_host ? (from_host ? cudaMemcpyHostToHost : cudaMemcpyDeviceToHost)
                                : (from_host ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice);
  const char* what = to_host ? (from_host ? "copy host->host" : "copy device->host")
                             : (from_host ? "copy host->device" : "copy device->device");
  cudaStream_t s = stream();
  DALLE_RETURN_IF_ERROR(check(cudaMemcpyAsync(dst, src, bytes, kind, s), what));
  // Host memory is the caller's (a JS ArrayBuffer): it must be done with before we return.
  if (to_host || from_host) DALLE_RETURN_IF_ERROR(check(cudaStreamSynchronize(s), what));
  return Status::Ok();
}

Status device_memset_zero(void* p, size_t bytes) {
  return check(cudaMemsetAsync(p, 0, bytes, stream()), "cudaMemsetAsync");
}

}  // namespace

void empty_cache() { allocator().release_cached(); }

}  // namespace cuda

CudaInfo cuda_info() {
  const cuda::Discovery& d = cuda::discover();
  CudaInfo info;
  info.compiled = true;
#if DALLE_CUDA_EMULATED
  info.emulated = true;
#endif
  info.device_count = d.device_count;
  info.device_name = d.device_name;
  info.error = d.error;
  info.cublaslt = cuda::cublaslt_available();
  return info;
}

void cuda_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Without a usable device no allocator is installed, so asking for CUDA memory fails as
    // E_DEVICE ("this build has no usable CUDA device") rather than with a driver error.
    if (cuda::discover().device_count == 0) return;
    DeviceAllocator a;
    a.alloc = cuda::device_alloc;
    a.free = cuda::device_free;
    a.copy = cuda::device_copy;
    a.memset_zero = cuda::device_memset_zero;
    set_cuda_allocator(&a);
  });
}

}  // namespace dalle

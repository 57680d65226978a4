#include "storage.h"

#include "cpu_cache.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace dalle {

namespace {
DeviceAllocator g_cuda_alloc;
bool g_cuda_alloc_set = false;
std::atomic<size_t> g_live[2];

// The machine's physical memory; 0 (no limit) where the system does not say.
size_t physical_memory_bytes() {
  static const size_t bytes = [] {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : size_t{0};
  }();
  return bytes;
}
}  // namespace

DeviceAllocator* cuda_allocator() { return g_cuda_alloc_set ? &g_cuda_alloc : nullptr; }

void set_cuda_allocator(const DeviceAllocator* alloc) {
  if (alloc) g_cuda_alloc = *alloc;
  g_cuda_alloc_set = alloc != nullptr;
}

Status Storage::create(Device device, size_t bytes, std::shared_ptr<Storage>* out) {
  size_t padded = (bytes + 63) / 64 * 64;
  if (padded == 0) padded = 64;
  void* p = nullptr;
  if (device == Device::kCPU) {
    // All the machine's memory or more cannot be served, but the kernel may grant it (overcommit: any size under
    // overcommit_memory = 1, up to all of RAM by default); the zero fill would then end the process in the OOM
    // killer instead of failing here.
    const size_t physical = physical_memory_bytes();
    if (physical > 0 && padded >= physical)
      return make_status(StatusCode::kOutOfMemory, "could not allocate %zu bytes: the machine has %zu bytes of memory",
                         bytes, physical);
    p = cpu_block_alloc(padded);
    if (!p) return make_status(StatusCode::kOutOfMemory, "could not allocate %zu bytes", bytes);
    std::memset(p, 0, padded);
  } else {
    DeviceAllocator* a = cuda_allocator();
    if (!a) return make_status(StatusCode::kDeviceMismatch, "this build has no usable CUDA device");
    DALLE_RETURN_IF_ERROR(a->alloc(padded, &p));
    DALLE_RETURN_IF_ERROR(a->memset_zero(p, padded));
  }
  out->reset(new Storage(device, p, bytes));
  g_live[static_cast<int>(device)] += bytes;
  return Status::Ok();
}

Storage::~Storage() {
  g_live[static_cast<int>(device_)] -= bytes_;
  if (device_ == Device::kCPU) {
    cpu_block_free(data_, bytes_);
  } else if (DeviceAllocator* a = cuda_allocator()) {
    a->free(data_);
  }
}

size_t live_bytes(Device device) { return g_live[static_cast<int>(device)].load(); }

Status copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return Status::Ok();
  if (dst_dev == Device::kCPU && src_dev == Device::kCPU) {
    std::memmove(dst, src, bytes);
    return Status::Ok();
  }
  DeviceAllocator* a = cuda_allocator();
  if (!a) return make_status(StatusCode::kDeviceMismatch, "this build has no usable CUDA device");
  return a->copy(dst, dst_dev, src, src_dev, bytes);
}

}  // namespace dalle

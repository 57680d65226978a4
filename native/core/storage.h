// Storage: owned device memory. CPU memory is 64-byte aligned (one AVX-512 line); CUDA memory
// comes through the hooks the CUDA backend installs, so core/ has no CUDA dependency.
#pragma once
#include <cstddef>
#include <memory>

#include "status.h"
#include "tensor.h"

namespace dalle {

struct DeviceAllocator {
  Status (*alloc)(size_t bytes, void** out) = nullptr;
  void (*free)(void* ptr) = nullptr;
  // Copies between host and device or within one device; kind is inferred from the devices.
  Status (*copy)(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) = nullptr;
  Status (*memset_zero)(void* ptr, size_t bytes) = nullptr;
};

// Installed by native/cuda at load time when the build has CUDA; null otherwise.
DeviceAllocator* cuda_allocator();
void set_cuda_allocator(const DeviceAllocator* alloc);

class Storage {
 public:
  // Zero-filled memory; fails with kOutOfMemory rather than throwing.
  static Status create(Device device, size_t bytes, std::shared_ptr<Storage>* out);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  Storage(Device device, void* data, size_t bytes) : device_(device), data_(data), bytes_(bytes) {}
  Device device_;
  void* data_;
  size_t bytes_;
};

// Bytes currently held by all Storage objects, per device; the JS side reports leaks with it.
size_t live_bytes(Device device);

Status copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);

}  // namespace dalle

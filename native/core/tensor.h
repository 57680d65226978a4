// TensorView: a non-owning description of memory (pointer, dtype, shape, strides, device).
// Kernels take views; ownership lives in Storage (storage.h) held by the bindings or an Arena.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "status.h"

namespace dalle {

enum class DType : int32_t { kF32 = 0, kBF16 = 1, kI32 = 2 };
enum class Device : int32_t { kCPU = 0, kCUDA = 1 };

constexpr int kMaxDims = 8;

inline size_t dtype_size(DType t) { return t == DType::kBF16 ? 2 : 4; }
const char* dtype_name(DType t);
const char* device_name(Device d);

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Device device = Device::kCPU;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};  // in elements, not bytes

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  // Negative axes count from the end, as in numpy.
  int64_t dim(int axis) const { return shape[axis < 0 ? ndim + axis : axis]; }
  bool is_contiguous() const;
  std::string shape_string() const;  // "[2, 3, 5]"

  float* f32() const { return static_cast<float*>(data); }
  int32_t* i32() const { return static_cast<int32_t*>(data); }
  uint16_t* bf16() const { return static_cast<uint16_t*>(data); }
};

// A contiguous view over `data` with the given shape.
TensorView make_view(void* data, DType dtype, Device device, const int64_t* shape, int ndim);
TensorView make_view(void* data, DType dtype, Device device, std::initializer_list<int64_t> shape);

// Argument checks used by every op's shape inference; each returns a Status naming the op and
// the argument so the JS error says exactly what was wrong.
Status expect_dtype(const char* op, const char* arg, const TensorView& t, DType want);
Status expect_rank(const char* op, const char* arg, const TensorView& t, int ndim);
Status expect_rank_at_least(const char* op, const char* arg, const TensorView& t, int ndim);
Status expect_same_shape(const char* op, const char* arg_a, const TensorView& a, const char* arg_b,
                         const TensorView& b);
Status expect_dim(const char* op, const char* arg, const TensorView& t, int axis, int64_t want);

// bf16 <-> f32, round-to-nearest-even; NaN stays NaN.
inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  __builtin_memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

}  // namespace dalle

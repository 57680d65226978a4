#include "tensor.h"

#include <cstdio>

namespace dalle {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
  }
  return "?";
}

const char* device_name(Device d) { return d == Device::kCUDA ? "cuda" : "cpu"; }

bool TensorView::is_contiguous() const {
  int64_t expect = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

std::string TensorView::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

TensorView make_view(void* data, DType dtype, Device device, const int64_t* shape, int ndim) {
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.device = device;
  v.ndim = ndim;
  int64_t stride = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    v.shape[i] = shape[i];
    v.strides[i] = stride;
    stride *= shape[i];
  }
  return v;
}

TensorView make_view(void* data, DType dtype, Device device, std::initializer_list<int64_t> shape) {
  int64_t dims[kMaxDims];
  int n = 0;
  for (int64_t d : shape) dims[n++] = d;
  return make_view(data, dtype, device, dims, n);
}

Status expect_dtype(const char* op, const char* arg, const TensorView& t, DType want) {
  if (t.dtype == want) return Status::Ok();
  return make_status(StatusCode::kDTypeMismatch, "%s: %s must be %s, got %s", op, arg,
                     dtype_name(want), dtype_name(t.dtype));
}

Status expect_rank(const char* op, const char* arg, const TensorView& t, int ndim) {
  if (t.ndim == ndim) return Status::Ok();
  return make_status(StatusCode::kInvalidArgument, "%s: %s must have rank %d, got shape %s", op,
                     arg, ndim, t.shape_string().c_str());
}

Status expect_rank_at_least(const char* op, const char* arg, const TensorView& t, int ndim) {
  if (t.ndim >= ndim) return Status::Ok();
  return make_status(StatusCode::kInvalidArgument, "%s: %s must have rank >= %d, got shape %s",
                     op, arg, ndim, t.shape_string().c_str());
}

Status expect_same_shape(const char* op, const char* arg_a, const TensorView& a, const char* arg_b,
                         const TensorView& b) {
  bool same = a.ndim == b.ndim;
  for (int i = 0; same && i < a.ndim; ++i) same = a.shape[i] == b.shape[i];
  if (same) return Status::Ok();
  return make_status(StatusCode::kInvalidArgument, "%s: %s %s and %s %s must have the same shape",
                     op, arg_a, a.shape_string().c_str(), arg_b, b.shape_string().c_str());
}

Status expect_dim(const char* op, const char* arg, const TensorView& t, int axis, int64_t want) {
  int a = axis < 0 ? t.ndim + axis : axis;
  if (a >= 0 && a < t.ndim && t.shape[a] == want) return Status::Ok();
  return make_status(StatusCode::kInvalidArgument, "%s: %s has shape %s, expected dim %d = %lld",
                     op, arg, t.shape_string().c_str(), axis, static_cast<long long>(want));
}

}  // namespace dalle

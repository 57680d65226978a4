// Status: how native code reports failure. Nothing in native/ may exit, abort or throw across
// the boundary; every fallible function returns a Status and the bindings turn it into a typed
// JS error whose `code` is the name below.
#pragma once
#include <string>
#include <utility>

namespace dalle {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // wrong rank, shape, attribute value
  kDTypeMismatch,    // wrong element type
  kDeviceMismatch,   // tensors on different devices, or a device this build lacks
  kEmptyTensor,      // a tensor with zero elements where data is needed
  kDisposed,         // a tensor used after dispose()
  kNonFinite,        // NaN/Inf found while finite checking is on
  kOutOfMemory,
  kUnsupported,      // a valid request this build or backend cannot do
  kNotFound,         // unknown op name
  kCudaError,
  kInternal,
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Formats like printf into a Status; kept out of line so headers stay light.
Status make_status(StatusCode code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace dalle

#define DALLE_RETURN_IF_ERROR(expr)            \
  do {                                         \
    ::dalle::Status _st = (expr);              \
    if (!_st.ok()) return _st;                 \
  } while (0)

#define DALLE_CHECK_ARG(cond, ...)                                                   \
  do {                                                                               \
    if (!(cond)) return ::dalle::make_status(::dalle::StatusCode::kInvalidArgument, \
                                             __VA_ARGS__);                           \
  } while (0)

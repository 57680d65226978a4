#include "status.h"

#include <cstdarg>
#include <cstdio>

namespace dalle {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "E_INVALID_ARGUMENT";
    case StatusCode::kDTypeMismatch: return "E_DTYPE";
    case StatusCode::kDeviceMismatch: return "E_DEVICE";
    case StatusCode::kEmptyTensor: return "E_EMPTY_TENSOR";
    case StatusCode::kDisposed: return "E_DISPOSED";
    case StatusCode::kNonFinite: return "E_NON_FINITE";
    case StatusCode::kOutOfMemory: return "E_OUT_OF_MEMORY";
    case StatusCode::kUnsupported: return "E_UNSUPPORTED";
    case StatusCode::kNotFound: return "E_NOT_FOUND";
    case StatusCode::kCudaError: return "E_CUDA";
    case StatusCode::kInternal: return "E_INTERNAL";
  }
  return "E_INTERNAL";
}

Status make_status(StatusCode code, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return Status(code, buf);
}

}  // namespace dalle

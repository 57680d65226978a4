// JS value -> native argument conversions. Each throws a typed JS error naming the argument.
#pragma once
#include <napi.h>

#include <vector>

#include "../native/core/registry.h"
#include "../native/core/tensor.h"

namespace dalle_bindings {

std::vector<int64_t> ShapeFromJs(Napi::Value v, const char* what);
dalle::DType DTypeFromJs(Napi::Value v, const char* what);
dalle::Device DeviceFromJs(Napi::Value v, const char* what);
// A plain object of numbers (booleans become 0/1); undefined means no attributes.
dalle::Attrs AttrsFromJs(Napi::Value v, const char* what);

}  // namespace dalle_bindings

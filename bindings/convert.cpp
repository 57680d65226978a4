#include "convert.h"

#include <cmath>
#include <string>

#include "errors.h"

namespace dalle_bindings {

namespace {
constexpr uint32_t kMaxAttrs = 64;

[[noreturn]] void Fail(Napi::Env env, const char* what, const std::string& msg) {
  throw MakeError(env, "E_INVALID_ARGUMENT", std::string(what) + ": " + msg);
}
}  // namespace

std::vector<int64_t> ShapeFromJs(Napi::Value v, const char* what) {
  Napi::Env env = v.Env();
  if (!v.IsArray()) Fail(env, what, "shape must be an array of non-negative integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > static_cast<uint32_t>(dalle::kMaxDims))
    Fail(env, what, "at most " + std::to_string(dalle::kMaxDims) + " dims are supported");
  std::vector<int64_t> shape;
  // The product of the non-zero dims: an empty tensor's other dims still go into int64 strides and element
  // counts, which [2^53 - 1, 2^53 - 1, 0] would overflow (undefined behaviour, an abort under UBSan).
  double nonzero_total = 1;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0) || x != std::floor(x) || x > 9007199254740991.0)
      Fail(env, what, "shape must be an array of non-negative integers");
    if (x > 0) nonzero_total *= x;
    shape.push_back(static_cast<int64_t>(x));
  }
  // 2^40 elements is far beyond any memory here; larger counts are a mistake, not a request.
  if (nonzero_total > 1099511627776.0) Fail(env, what, "shape has too many elements");
  return shape;
}

dalle::DType DTypeFromJs(Napi::Value v, const char* what) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "f32") return dalle::DType::kF32;
  if (s == "bf16") return dalle::DType::kBF16;
  if (s == "i32") return dalle::DType::kI32;
  throw MakeError(v.Env(), "E_DTYPE", std::string(what) + ": dtype must be 'f32', 'bf16' or 'i32'");
}

dalle::Device DeviceFromJs(Napi::Value v, const char* what) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "cpu") return dalle::Device::kCPU;
  if (s == "cuda") return dalle::Device::kCUDA;
  throw MakeError(v.Env(), "E_DEVICE", std::string(what) + ": device must be 'cpu' or 'cuda'");
}

dalle::Attrs AttrsFromJs(Napi::Value v, const char* what) {
  dalle::Attrs attrs;
  if (v.IsUndefined() || v.IsNull()) return attrs;
  if (!v.IsObject()) Fail(v.Env(), what, "attributes must be an object of numbers");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  // Ops read a handful of attributes; refusing more keeps a huge object (or a typed array, whose every index is
  // a key) from costing quadratic time in Attrs::set's duplicate search.
  if (keys.Length() > kMaxAttrs)
    Fail(v.Env(), what, "attributes have " + std::to_string(keys.Length()) + " keys, more than the " +
                            std::to_string(kMaxAttrs) + " any op reads");
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string k = keys.Get(i).ToString().Utf8Value();
    Napi::Value x = o.Get(k);
    if (x.IsNumber()) attrs.set(k, x.As<Napi::Number>().DoubleValue());
    else if (x.IsBoolean()) attrs.set(k, x.As<Napi::Boolean>().Value() ? 1.0 : 0.0);
    else if (!x.IsUndefined()) Fail(v.Env(), what, "attribute '" + k + "' must be a number");
  }
  return attrs;
}

}  // namespace dalle_bindings

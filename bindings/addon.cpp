// Module entry: tensor creation, arenas, build info, error factory; ops live in ops.cpp.
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../native/core/arena.h"
#include "../native/core/backend.h"
#include "../native/core/cpu_cache.h"
#include "../native/core/selftest.h"
#include "../native/core/storage.h"
#include "../native/core/threadpool.h"
#include "addon_data.h"
#include "convert.h"
#include "errors.h"
#include "ops.h"
#include "tensor_handle.h"

namespace dalle_bindings {
namespace {

using dalle::Status;

// empty(shape, dtype, device): zero-filled.
Napi::Value Empty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int64_t> shape = ShapeFromJs(info[0], "empty");
  dalle::DType dtype = DTypeFromJs(info[1], "empty");
  dalle::Device device = DeviceFromJs(info[2], "empty");
  dalle::TensorView v = dalle::make_view(nullptr, dtype, device, shape.data(), static_cast<int>(shape.size()));
  std::shared_ptr<dalle::Storage> s;
  Status st = dalle::Storage::create(device, v.nbytes(), &s);
  if (!st.ok()) ThrowStatus(env, st);
  v.data = s->data();
  return TensorHandle::Wrap(env, std::move(s), v);
}

// createArena(specs: {name, dtype, shape}[], device) -> { flat, tensors[], offsets[] }:
// one allocation; `flat` is an f32 view of all of it (padding included, zero) for whole-arena
// ops such as clipping and AdamW, `tensors` the named slices.
Napi::Value CreateArena(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw MakeError(env, "E_INVALID_ARGUMENT", "createArena: specs must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  if (arr.Length() == 0) throw MakeError(env, "E_EMPTY_TENSOR", "createArena: no specs");
  dalle::Device device = DeviceFromJs(info[1], "createArena");
  std::vector<dalle::ArenaSpec> specs;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    if (!arr.Get(i).IsObject()) throw MakeError(env, "E_INVALID_ARGUMENT", "createArena: each spec must be an object");
    Napi::Object o = arr.Get(i).As<Napi::Object>();
    dalle::ArenaSpec s;
    s.name = o.Get("name").ToString().Utf8Value();
    s.dtype = DTypeFromJs(o.Get("dtype"), ("createArena: " + s.name).c_str());
    s.shape = ShapeFromJs(o.Get("shape"), ("createArena: " + s.name).c_str());
    specs.push_back(std::move(s));
  }
  std::unique_ptr<dalle::Arena> arena;
  Status st = dalle::Arena::create(device, std::move(specs), &arena);
  if (!st.ok()) ThrowStatus(env, st);
  Napi::Object result = Napi::Object::New(env);
  size_t padded = (arena->total_bytes() + 63) / 64 * 64;
  dalle::TensorView flat = dalle::make_view(arena->storage()->data(), dalle::DType::kF32, device,
                                            {static_cast<int64_t>(padded / 4)});
  result.Set("flat", TensorHandle::Wrap(env, arena->storage(), flat));
  Napi::Array tensors = Napi::Array::New(env, arena->size());
  Napi::Array offsets = Napi::Array::New(env, arena->size());
  for (size_t i = 0; i < arena->size(); ++i) {
    tensors.Set(static_cast<uint32_t>(i), TensorHandle::Wrap(env, arena->storage(), arena->view(i)));
    offsets.Set(static_cast<uint32_t>(i), Napi::Number::New(env, double(arena->offset_bytes(i))));
  }
  result.Set("tensors", tensors);
  result.Set("offsets", offsets);
  result.Set("byteLength", Napi::Number::New(env, double(arena->total_bytes())));
  return result;
}

// isTensorHandle(v): v is a handle this addon made (disposed or not), not an object that only inherits from
// TensorHandle.prototype or a Proxy of a handle, whose every accessor would throw.
Napi::Value IsTensorHandle(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), TensorHandle::Peek(info[0]) != nullptr);
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  dalle::CudaInfo cuda = dalle::cuda_info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cudaCompiled", Napi::Boolean::New(env, cuda.compiled));
  o.Set("cudaDevices", Napi::Number::New(env, cuda.device_count));
  o.Set("cudaDeviceName", cuda.device_name);
  o.Set("cudaError", cuda.error);
  o.Set("cublasLt", Napi::Boolean::New(env, cuda.cublaslt));
  o.Set("cudaEmulated", Napi::Boolean::New(env, cuda.emulated));
  o.Set("simd", dalle::simd_level_name(dalle::cpu_simd_level()));
  o.Set("activeSimd", dalle::simd_level_name(dalle::active_simd_level()));
  o.Set("threads", Napi::Number::New(env, dalle::ThreadPool::global().num_threads()));
#ifdef DALLE_SANITIZE
  o.Set("sanitized", Napi::Boolean::New(env, true));
#else
  o.Set("sanitized", Napi::Boolean::New(env, false));
#endif
  o.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return o;
}

Napi::Value LiveBytes(const Napi::CallbackInfo& info) {
  dalle::Device d = DeviceFromJs(info[0], "liveBytes");
  return Napi::Number::New(info.Env(), double(dalle::live_bytes(d)));
}

// CPU memory kept for reuse after tensors were freed; releaseCachedMemory() gives it back.
Napi::Value CachedBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(dalle::cpu_cache_bytes()));
}
Napi::Value ReleaseCachedMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(dalle::cpu_cache_release()));
}

Napi::Value SetErrorFactoryJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw MakeError(info.Env(), "E_INVALID_ARGUMENT", "setErrorFactory: expected a function");
  SetErrorFactory(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// setSimdLevel(n): -1 restores the best the CPU has; 0 scalar, 1 AVX2+FMA, 2 AVX-512.
Napi::Value SetSimdLevel(const Napi::CallbackInfo& info) {
  dalle::set_simd_level_override(info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : -1);
  return Napi::String::New(info.Env(), dalle::simd_level_name(dalle::active_simd_level()));
}

// cudaSelfTests() -> {name, kind}[]: the CUDA self-test cases this binary has (none without CUDA).
Napi::Value CudaSelfTests(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& cases = dalle::cuda_selftests();
  Napi::Array arr = Napi::Array::New(env, cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", cases[i].name);
    const char* kind = cases[i].kind == dalle::SelfTestKind::kPrimitive ? "primitive"
                       : cases[i].kind == dalle::SelfTestKind::kRefusal ? "refusal"
                                                                         : "misuse";
    o.Set("kind", kind);
    arr.Set(static_cast<uint32_t>(i), o);
  }
  return arr;
}

// runCudaSelfTest(name) -> {ok, message}: a primitive's checks, or the error a broken case produced.
Napi::Value RunCudaSelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  for (const auto& c : dalle::cuda_selftests()) {
    if (name != c.name) continue;
    std::string detail;
    Status st = c.run(&detail);
    Napi::Object o = Napi::Object::New(env);
    o.Set("ok", Napi::Boolean::New(env, st.ok()));
    o.Set("message", st.ok() ? detail : st.message());
    return o;
  }
  throw MakeError(env, "E_NOT_FOUND", "runCudaSelfTest: no self-test case named " + name);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  dalle::cuda_init();
  env.SetInstanceData<AddonData>(new AddonData());
  exports.Set("TensorHandle", TensorHandle::Init(env));
  exports.Set("empty", Napi::Function::New<Empty>(env, "empty"));
  exports.Set("isTensorHandle", Napi::Function::New<IsTensorHandle>(env, "isTensorHandle"));
  exports.Set("createArena", Napi::Function::New<CreateArena>(env, "createArena"));
  exports.Set("buildInfo", Napi::Function::New<BuildInfo>(env, "buildInfo"));
  exports.Set("liveBytes", Napi::Function::New<LiveBytes>(env, "liveBytes"));
  exports.Set("cachedBytes", Napi::Function::New<CachedBytes>(env, "cachedBytes"));
  exports.Set("releaseCachedMemory", Napi::Function::New<ReleaseCachedMemory>(env, "releaseCachedMemory"));
  exports.Set("setErrorFactory", Napi::Function::New<SetErrorFactoryJs>(env, "setErrorFactory"));
  exports.Set("setSimdLevel", Napi::Function::New<SetSimdLevel>(env, "setSimdLevel"));
  exports.Set("cudaSelfTests", Napi::Function::New<CudaSelfTests>(env, "cudaSelfTests"));
  exports.Set("runCudaSelfTest", Napi::Function::New<RunCudaSelfTest>(env, "runCudaSelfTest"));
  InitOps(env, exports);
  return exports;
}

}  // namespace dalle_bindings

static Napi::Object InitDalleAddon(Napi::Env env, Napi::Object exports) {
  return dalle_bindings::Init(env, exports);
}

NODE_API_MODULE(dalle, InitDalleAddon)

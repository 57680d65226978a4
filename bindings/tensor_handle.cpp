#include "tensor_handle.h"

#include <cstring>

#include "addon_data.h"
#include "convert.h"
#include "errors.h"

namespace dalle_bindings {

using dalle::Status;
using dalle::StatusCode;


Napi::Function TensorHandle::Init(Napi::Env env) {
  Napi::Function fn = DefineClass(env, "TensorHandle",
                                  {
                                      InstanceAccessor<&TensorHandle::Shape>("shape"),
                                      InstanceAccessor<&TensorHandle::DType>("dtype"),
                                      InstanceAccessor<&TensorHandle::Device>("device"),
                                      InstanceAccessor<&TensorHandle::Disposed>("disposed"),
                                      InstanceAccessor<&TensorHandle::ByteLength>("byteLength"),
                                      InstanceMethod<&TensorHandle::Read>("read"),
                                      InstanceMethod<&TensorHandle::Write>("write"),
                                      InstanceMethod<&TensorHandle::Reshape>("reshape"),
                                      InstanceMethod<&TensorHandle::To>("to"),
                                      InstanceMethod<&TensorHandle::Dispose>("dispose"),
                                  });
  GetAddonData(env)->tensor_ctor = Napi::Persistent(fn);
  return fn;
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

Napi::Object TensorHandle::Wrap(Napi::Env env, std::shared_ptr<dalle::Storage> storage,
                                const dalle::TensorView& view) {
  Napi::Object obj = GetAddonData(env)->tensor_ctor.New({});
  TensorHandle* h = Napi::ObjectWrap<TensorHandle>::Unwrap(obj);
  h->storage_ = std::move(storage);
  h->view_ = view;
  return obj;
}

TensorHandle* TensorHandle::Peek(Napi::Value value) {
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(GetAddonData(env)->tensor_ctor.Value())) return nullptr;
  // instanceof also holds for Object.create(TensorHandle.prototype) and for a Proxy of a handle, which wrap
  // nothing: ObjectWrap::Unwrap would throw a plain Error for them, so ask napi_unwrap directly.
  void* wrapped = nullptr;
  if (napi_unwrap(env, value, &wrapped) != napi_ok) return nullptr;
  return static_cast<TensorHandle*>(wrapped);
}

TensorHandle* TensorHandle::FromJs(Napi::Value value, const char* what) {
  Napi::Env env = value.Env();
  TensorHandle* h = Peek(value);
  if (!h) throw MakeError(env, "E_INVALID_ARGUMENT", std::string(what) + " is not a tensor");
  if (h->disposed())
    throw MakeError(env, "E_DISPOSED", std::string(what) + " was disposed");
  return h;
}

Napi::Value TensorHandle::Shape(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env(), view_.ndim);
  for (int i = 0; i < view_.ndim; ++i) a.Set(i, Napi::Number::New(info.Env(), double(view_.shape[i])));
  return a;
}

Napi::Value TensorHandle::DType(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dalle::dtype_name(view_.dtype));
}

Napi::Value TensorHandle::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dalle::device_name(view_.device));
}

Napi::Value TensorHandle::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed());
}

Napi::Value TensorHandle::ByteLength(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(view_.nbytes()));
}

// read(): a fresh ArrayBuffer with the tensor's bytes (copied from the device if needed).
Napi::Value TensorHandle::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed()) throw MakeError(env, "E_DISPOSED", "read: tensor was disposed");
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, view_.nbytes());
  Status st = dalle::copy_bytes(buf.Data(), dalle::Device::kCPU, view_.data, view_.device, view_.nbytes());
  if (!st.ok()) ThrowStatus(env, st);
  return buf;
}

// write(typedArray): copies exactly byteLength bytes into the tensor.
Napi::Value TensorHandle::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed()) throw MakeError(env, "E_DISPOSED", "write: tensor was disposed");
  if (info.Length() < 1 || !info[0].IsTypedArray())
    throw MakeError(env, "E_INVALID_ARGUMENT", "write: expected a typed array");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  if (ta.ByteLength() != view_.nbytes())
    throw MakeError(env, "E_INVALID_ARGUMENT",
                    "write: got " + std::to_string(ta.ByteLength()) + " bytes, tensor holds " +
                        std::to_string(view_.nbytes()));
  const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  Status st = dalle::copy_bytes(view_.data, view_.device, src, dalle::Device::kCPU, view_.nbytes());
  if (!st.ok()) ThrowStatus(env, st);
  return env.Undefined();
}

// reshape(shape): a new handle sharing this storage.
Napi::Value TensorHandle::Reshape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed()) throw MakeError(env, "E_DISPOSED", "reshape: tensor was disposed");
  std::vector<int64_t> shape = ShapeFromJs(info[0], "reshape");
  dalle::TensorView v = dalle::make_view(view_.data, view_.dtype, view_.device, shape.data(),
                                         static_cast<int>(shape.size()));
  if (v.numel() != view_.numel())
    throw MakeError(env, "E_INVALID_ARGUMENT", "reshape: " + view_.shape_string() + " has " +
                                                   std::to_string(view_.numel()) + " elements, " +
                                                   v.shape_string() + " needs " + std::to_string(v.numel()));
  return Wrap(env, storage_, v);
}

// to(device): a copy on the given device ("cpu" | "cuda").
Napi::Value TensorHandle::To(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed()) throw MakeError(env, "E_DISPOSED", "to: tensor was disposed");
  dalle::Device dev = DeviceFromJs(info[0], "to");
  std::shared_ptr<dalle::Storage> s;
  Status st = dalle::Storage::create(dev, view_.nbytes(), &s);
  if (st.ok()) st = dalle::copy_bytes(s->data(), dev, view_.data, view_.device, view_.nbytes());
  if (!st.ok()) ThrowStatus(env, st);
  dalle::TensorView v = dalle::make_view(s->data(), view_.dtype, dev, view_.shape, view_.ndim);
  return Wrap(env, std::move(s), v);
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  storage_.reset();
  view_.data = nullptr;
  return info.Env().Undefined();
}

}  // namespace dalle_bindings

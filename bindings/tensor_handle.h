// TensorHandle: the JS-visible owner of one tensor. It holds a shared_ptr to its Storage, so
// views (reshape, arena slices) and in-flight async ops keep memory alive; dispose() only drops
// this handle's reference.
#pragma once
#include <napi.h>

#include <memory>

#include "../native/core/storage.h"
#include "../native/core/tensor.h"

namespace dalle_bindings {

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  // A new JS handle over `storage` described by `view` (view.data must point into storage).
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<dalle::Storage> storage,
                           const dalle::TensorView& view);
  // The live TensorHandle `value` is; throws E_INVALID_ARGUMENT (not a handle) or E_DISPOSED.
  static TensorHandle* FromJs(Napi::Value value, const char* what);
  // The handle `value` wraps, disposed or not; null for anything else (nothing is thrown).
  static TensorHandle* Peek(Napi::Value value);

  explicit TensorHandle(const Napi::CallbackInfo& info);

  bool disposed() const { return !storage_; }
  const dalle::TensorView& view() const { return view_; }
  const std::shared_ptr<dalle::Storage>& storage() const { return storage_; }

 private:
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value DType(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value ByteLength(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Reshape(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<dalle::Storage> storage_;
  dalle::TensorView view_;
};

}  // namespace dalle_bindings

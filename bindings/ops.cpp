#include "ops.h"

#include <memory>
#include <string>
#include <vector>

#include "../native/core/registry.h"
#include "convert.h"
#include "errors.h"
#include "tensor_handle.h"

namespace dalle_bindings {

using dalle::OpArgs;
using dalle::OpDef;
using dalle::Status;

namespace {

// Everything an op call needs, with the storages pinned so a dispose() during an async call
// cannot free memory a kernel is using.
struct PreparedCall {
  const OpDef* op = nullptr;
  OpArgs args;
  std::vector<std::shared_ptr<dalle::Storage>> pinned;
  std::vector<std::shared_ptr<dalle::Storage>> out_storage;
  // The caller passed the outputs and holds them; wrapping them again would hand JS new handles it
  // ignores, each keeping its storage alive until a garbage collection, which a small JS heap
  // may not run for gigabytes of native memory.
  bool outputs_given = false;
};

const OpDef& FindOp(Napi::Env env, Napi::Value name) {
  if (!name.IsString()) throw MakeError(env, "E_INVALID_ARGUMENT", "op name must be a string");
  std::string n = name.As<Napi::String>().Utf8Value();
  const OpDef* op = dalle::find_op(n);
  if (!op) throw MakeError(env, "E_NOT_FOUND", "no op named '" + n + "'");
  return *op;
}

// runOp(name, inputs[], attrs?, outputs?[]): validates, infers, allocates (or checks the given
// outputs) and returns the prepared call.
std::unique_ptr<PreparedCall> Prepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto call = std::make_unique<PreparedCall>();
  call->op = &FindOp(env, info[0]);
  const OpDef& op = *call->op;
  if (!info[1].IsArray()) throw MakeError(env, "E_INVALID_ARGUMENT", op.name + ": inputs must be an array");
  Napi::Array inputs = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < inputs.Length(); ++i) {
    std::string what = op.name + ": " + (i < op.inputs.size() ? op.inputs[i] : "input " + std::to_string(i));
    TensorHandle* h = TensorHandle::FromJs(inputs.Get(i), what.c_str());
    call->args.in.push_back(h->view());
    call->pinned.push_back(h->storage());
  }
  call->args.attrs = AttrsFromJs(info[2], op.name.c_str());
  Status st = dalle::prepare_op(op, call->args);
  if (!st.ok()) ThrowStatus(env, st);

  bool given = info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull();
  call->outputs_given = given;
  if (given) {
    if (!info[3].IsArray() || info[3].As<Napi::Array>().Length() != call->args.out.size())
      throw MakeError(env, "E_INVALID_ARGUMENT",
                      op.name + ": outputs must be an array of " + std::to_string(call->args.out.size()) + " tensors");
    Napi::Array outs = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < outs.Length(); ++i) {
      dalle::TensorView& spec = call->args.out[i];
      std::string what = op.name + ": output " + op.outputs[i];
      TensorHandle* h = TensorHandle::FromJs(outs.Get(i), what.c_str());
      const dalle::TensorView& v = h->view();
      bool same = v.ndim == spec.ndim && v.dtype == spec.dtype && v.device == spec.device;
      for (int d = 0; same && d < v.ndim; ++d) same = v.shape[d] == spec.shape[d];
      if (!same)
        throw MakeError(env, "E_INVALID_ARGUMENT",
                        what + " must be " + dalle::dtype_name(spec.dtype) + " " + spec.shape_string() +
                            " on " + dalle::device_name(spec.device) + ", got " +
                            dalle::dtype_name(v.dtype) + " " + v.shape_string() + " on " +
                            dalle::device_name(v.device));
      spec.data = v.data;
      call->out_storage.push_back(h->storage());
    }
  } else {
    for (dalle::TensorView& spec : call->args.out) {
      std::shared_ptr<dalle::Storage> s;
      st = dalle::Storage::create(spec.device, spec.nbytes(), &s);
      if (!st.ok()) ThrowStatus(env, st);
      spec = dalle::make_view(s->data(), spec.dtype, spec.device, spec.shape, spec.ndim);
      call->out_storage.push_back(std::move(s));
    }
  }
  return call;
}

// New outputs as TensorHandles; undefined when the caller supplied them.
Napi::Value WrapOutputs(Napi::Env env, PreparedCall& call) {
  if (call.outputs_given) return env.Undefined();
  Napi::Array result = Napi::Array::New(env, call.args.out.size());
  for (size_t i = 0; i < call.args.out.size(); ++i)
    result.Set(static_cast<uint32_t>(i), TensorHandle::Wrap(env, call.out_storage[i], call.args.out[i]));
  return result;
}

// Native code may throw std::bad_alloc from containers; nothing else may escape a kernel.
Status ExecuteGuarded(PreparedCall& call) {
  try {
    return dalle::execute_op(*call.op, call.args);
  } catch (const std::bad_alloc&) {
    return dalle::make_status(dalle::StatusCode::kOutOfMemory, "%s: out of memory", call.op->name.c_str());
  } catch (const std::exception& e) {
    return dalle::make_status(dalle::StatusCode::kInternal, "%s: %s", call.op->name.c_str(), e.what());
  }
}

Napi::Value RunOp(const Napi::CallbackInfo& info) {
  std::unique_ptr<PreparedCall> call = Prepare(info);
  Status st = ExecuteGuarded(*call);
  if (!st.ok()) ThrowStatus(info.Env(), st);
  return WrapOutputs(info.Env(), *call);
}

class OpWorker : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, std::unique_ptr<PreparedCall> call)
      : Napi::AsyncWorker(env), call_(std::move(call)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { status_ = ExecuteGuarded(*call_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!status_.ok()) {
      deferred_.Reject(MakeError(env, status_).Value());
      return;
    }
    deferred_.Resolve(WrapOutputs(env, *call_));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::unique_ptr<PreparedCall> call_;
  Napi::Promise::Deferred deferred_;
  Status status_;
};

// Validation errors reject the promise rather than throwing synchronously.
Napi::Value RunOpAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::unique_ptr<PreparedCall> call;
  try {
    call = Prepare(info);
  } catch (const Napi::Error& e) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
  OpWorker* w = new OpWorker(env, std::move(call));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value OpNames(const Napi::CallbackInfo& info) {
  std::vector<std::string> names = dalle::op_names();
  Napi::Array a = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
  return a;
}

Napi::Array StringArray(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

Napi::Value OpInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const OpDef& op = FindOp(env, info[0]);
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", op.name);
  o.Set("inputs", StringArray(env, op.inputs));
  o.Set("outputs", StringArray(env, op.outputs));
  Napi::Array mutated = Napi::Array::New(env, op.mutated_inputs.size());
  for (size_t i = 0; i < op.mutated_inputs.size(); ++i) mutated.Set(static_cast<uint32_t>(i), op.mutated_inputs[i]);
  o.Set("mutatedInputs", mutated);
  o.Set("cuda", Napi::Boolean::New(env, op.cuda != nullptr));
  return o;
}

Napi::Value SetCheckFinite(const Napi::CallbackInfo& info) {
  dalle::set_check_finite(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

}  // namespace

void InitOps(Napi::Env env, Napi::Object exports) {
  exports.Set("runOp", Napi::Function::New<RunOp>(env, "runOp"));
  exports.Set("runOpAsync", Napi::Function::New<RunOpAsync>(env, "runOpAsync"));
  exports.Set("opNames", Napi::Function::New<OpNames>(env, "opNames"));
  exports.Set("opInfo", Napi::Function::New<OpInfo>(env, "opInfo"));
  exports.Set("setCheckFinite", Napi::Function::New<SetCheckFinite>(env, "setCheckFinite"));
}

}  // namespace dalle_bindings

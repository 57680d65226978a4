#include "errors.h"

#include "addon_data.h"

namespace dalle_bindings {

void SetErrorFactory(Napi::Function factory) {
  GetAddonData(factory.Env())->error_factory = Napi::Persistent(factory);
}

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message) {
  AddonData* data = GetAddonData(env);
  if (data && !data->error_factory.IsEmpty()) {
    Napi::Value err = data->error_factory.Call({Napi::String::New(env, code), Napi::String::New(env, message)});
    if (err.IsObject()) return Napi::Error(env, err);
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Error MakeError(Napi::Env env, const dalle::Status& st) {
  return MakeError(env, dalle::status_code_name(st.code()), st.message());
}

Napi::Value ThrowStatus(Napi::Env env, const dalle::Status& st) { throw MakeError(env, st); }

}  // namespace dalle_bindings

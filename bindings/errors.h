// Status -> typed JS error. lib/ registers a factory (code, message) -> Error subclass at load;
// until then a plain Error with a `code` property is thrown.
#pragma once
#include <napi.h>

#include "../native/core/status.h"

namespace dalle_bindings {

void SetErrorFactory(Napi::Function factory);
Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message);
Napi::Error MakeError(Napi::Env env, const dalle::Status& st);
// Throws `st` as a JS exception (C++ exceptions are on in bindings/ only).
[[noreturn]] Napi::Value ThrowStatus(Napi::Env env, const dalle::Status& st);

}  // namespace dalle_bindings

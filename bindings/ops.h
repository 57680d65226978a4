// runOp / runOpAsync / opInfo: the one generic entry point through which every registered op is
// called. lib/ops wraps it in typed functions.
#pragma once
#include <napi.h>

namespace dalle_bindings {

void InitOps(Napi::Env env, Napi::Object exports);

}  // namespace dalle_bindings

// Per-environment state: each worker_thread that loads the addon gets its own constructor and
// error factory references, so handles never cross environments.
#pragma once
#include <napi.h>

namespace dalle_bindings {

struct AddonData {
  Napi::FunctionReference tensor_ctor;
  Napi::FunctionReference error_factory;
};

inline AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

}  // namespace dalle_bindings

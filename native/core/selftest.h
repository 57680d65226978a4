// The CUDA self-test: small kernels that prove each device primitive (indices, shared memory,
// barriers, warp collectives, atomics, math, bf16, tensor cores) against a plain host loop, and,
// on the emulated device, that misuse is caught. The cases live in native/cuda/selftest (compiled
// into every CUDA build, emulated or not); a build without CUDA has none. test/cuda-selftest.test.ts
// runs them through the addon.
#pragma once
#include <string>
#include <vector>

#include "status.h"

namespace dalle {

enum class SelfTestKind {
  kPrimitive,  // must pass, on the emulator and on a GPU
  kRefusal,    // a launch a GPU refuses: must fail, on both
  kMisuse,     // a broken kernel the emulator must catch (on a GPU it would hang or corrupt memory)
};

struct SelfTestCase {
  const char* name;
  SelfTestKind kind;
  // Ok when a primitive matched its host loop (*info: what was checked); a misuse or refusal
  // case returns the error its launch produced.
  Status (*run)(std::string* info);
};

bool register_cuda_selftest(SelfTestCase c);
const std::vector<SelfTestCase>& cuda_selftests();

}  // namespace dalle

#define DALLE_REGISTER_CUDA_SELFTEST(id, kind, fn) \
  static const bool dalle_selftest_registered_##id = ::dalle::register_cuda_selftest({#id, kind, fn})

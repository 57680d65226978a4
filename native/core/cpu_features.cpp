#include <atomic>

#include "backend.h"

namespace dalle {

namespace {
std::atomic<int> g_override{-1};

SimdLevel detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return SimdLevel::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::kAvx2Fma;
#endif
  return SimdLevel::kScalar;
}
}  // namespace

SimdLevel cpu_simd_level() {
  static const SimdLevel level = detect();
  return level;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx2Fma: return "avx2-fma";
    case SimdLevel::kScalar: return "scalar";
  }
  return "scalar";
}

void set_simd_level_override(int level) { g_override = level; }

SimdLevel active_simd_level() {
  int o = g_override.load();
  SimdLevel best = cpu_simd_level();
  if (o < 0 || o >= static_cast<int>(best)) return best;
  return static_cast<SimdLevel>(o);
}

}  // namespace dalle

#include "cpu_cache.h"

#include <cstdlib>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace dalle {

namespace {

// Below this, glibc's bins serve sizes well and caching would only pin memory.
constexpr size_t kMinCached = size_t{256} << 10;
// Sizes are rounded to this so near-equal requests share blocks.
constexpr size_t kGranule = size_t{64} << 10;

size_t rounded(size_t bytes) {
  if (bytes < kMinCached) return (bytes + 63) / 64 * 64;
  return (bytes + kGranule - 1) / kGranule * kGranule;
}

// Cached bytes beyond this are returned to the system: DALLE_CPU_CACHE_MB, default 1024.
size_t cache_limit() {
  static const size_t limit = [] {
    const char* s = std::getenv("DALLE_CPU_CACHE_MB");
    if (s && *s) {
      char* end = nullptr;
      unsigned long long mb = std::strtoull(s, &end, 10);
      if (end && *end == '\0' && mb < (uint64_t{1} << 40)) return static_cast<size_t>(mb) << 20;
    }
    return size_t{1024} << 20;
  }();
  return limit;
}

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // size -> block; the most recently freed last
  size_t cached = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // leaked on purpose: storages may be freed during static teardown
  return *c;
}

}  // namespace

void* cpu_block_alloc(size_t bytes) {
  const size_t size = rounded(bytes == 0 ? 1 : bytes);
  if (size >= kMinCached) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.cached -= size;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, size);
  if (!p && size >= kMinCached) {
    // Memory is short: give the cache back and try once more.
    cpu_cache_release();
    p = std::aligned_alloc(64, size);
  }
  return p;
}

void cpu_block_free(void* p, size_t bytes) {
  if (!p) return;
  const size_t size = rounded(bytes == 0 ? 1 : bytes);
  if (size < kMinCached || size > cache_limit()) {
    std::free(p);
    return;
  }
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.free_blocks.emplace(size, p);
  c.cached += size;
  // Over the limit: drop the largest blocks first, they are the likeliest to be one-offs.
  while (c.cached > cache_limit()) {
    auto last = std::prev(c.free_blocks.end());
    c.cached -= last->first;
    std::free(last->second);
    c.free_blocks.erase(last);
  }
}

size_t cpu_cache_release() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  size_t released = c.cached;
  for (auto& [size, p] : c.free_blocks) std::free(p);
  c.free_blocks.clear();
  c.cached = 0;
  return released;
}

size_t cpu_cache_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.cached;
}

}  // namespace dalle

// A cache of large CPU blocks. Training frees and re-allocates the same sizes every step; through
// glibc alone, those allocations above its (self-raising) mmap threshold land on the heap and
// fragment it: a small dVAE's resident memory grew to 6.5 GB over 300 steps while live tensors
// stayed at 1.3 MB. With a fixed threshold instead, every step pays page faults (260 -> 380 ms).
// Reusing freed blocks of the same size keeps both memory and speed flat.
#pragma once
#include <cstddef>

namespace dalle {

// 64-byte aligned, uninitialised; null when out of memory. `bytes` is rounded up as the cache
// needs; pass the same value to cpu_block_free.
void* cpu_block_alloc(size_t bytes);
void cpu_block_free(void* p, size_t bytes);

// Frees every cached block (live ones are untouched); returns the bytes released.
size_t cpu_cache_release();
// Bytes held in the cache for reuse, not counting live tensors.
size_t cpu_cache_bytes();

}  // namespace dalle

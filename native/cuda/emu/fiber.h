// Fibers for the emulated CUDA device: one per CUDA thread, switched cooperatively on one OS
// thread. A switch is a dozen instructions (callee-saved registers, MXCSR and the x87 control word;
// x86-64 only), where ucontext's swapcontext makes a system call for the signal mask (~1 us).
#pragma once
#include <cstddef>

namespace dalle {
namespace emu {

// A fiber's stack: mmap'd, committed lazily by the kernel, with a PROT_NONE page below it.
struct FiberStack {
  char* base = nullptr;  // lowest usable byte (the guard page is below it)
  size_t bytes = 0;
};

// Bytes of stack per CUDA thread: DALLE_CUDA_EMU_STACK_KB (16..65536), default 256 KiB.
size_t fiber_stack_bytes();
bool fiber_stack_alloc(size_t bytes, FiberStack* out);
void fiber_stack_free(FiberStack* stack);

// A suspended context: what fiber_switch saved, or what fiber_prepare laid out.
struct FiberContext;

// Lays out a context on `stack` that, when first switched to, calls entry(arg) with IEEE
// floating-point modes (no flush-to-zero, round to nearest: a GPU's defaults). entry must never
// return; it switches away for the last time instead.
FiberContext* fiber_prepare(const FiberStack& stack, void (*entry)(void*), void* arg);
// Saves the running context in *save and resumes `to`.
void fiber_switch(FiberContext** save, FiberContext* to);

}  // namespace emu
}  // namespace dalle

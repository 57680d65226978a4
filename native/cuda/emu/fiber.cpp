#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>


namespace dalle {
namespace emu {

size_t fiber_stack_bytes() {
  static const size_t bytes = [] {
    size_t kb = 256;
    if (const char* env = std::getenv("DALLE_CUDA_EMU_STACK_KB")) {
      long v = std::strtol(env, nullptr, 10);
      if (v >= 16 && v <= 65536) kb = static_cast<size_t>(v);
    }
    return kb * 1024;
  }();
  return bytes;
}

bool fiber_stack_alloc(size_t bytes, FiberStack* out) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  bytes = (bytes + page - 1) / page * page;
  void* p = mmap(nullptr, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  // An overflow hits this page (a fault) instead of another fiber's stack (silent corruption).
  mprotect(p, page, PROT_NONE);
  out->base = static_cast<char*>(p) + page;
  out->bytes = bytes;
  return true;
}

void fiber_stack_free(FiberStack* stack) {
  if (!stack->base) return;
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  munmap(stack->base - page, stack->bytes + page);
  stack->base = nullptr;
}

#if defined(__x86_64__)

// Saved frame, from the saved stack pointer up: [mxcsr, x87 cw, pad] (16 bytes), r15, r14, r13,
// r12, rbx, rbp, return address. A fresh fiber's return address is dalle_emu_fiber_start, which
// finds entry in r12 and its argument in r13.
asm(R"(
  .text
  .p2align 4
  .globl dalle_emu_fiber_switch
  .hidden dalle_emu_fiber_switch
  .type dalle_emu_fiber_switch, @function
dalle_emu_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size dalle_emu_fiber_switch, .-dalle_emu_fiber_switch

  .p2align 4
  .globl dalle_emu_fiber_start
  .hidden dalle_emu_fiber_start
  .type dalle_emu_fiber_start, @function
dalle_emu_fiber_start:
  movq %r13, %rdi
  callq *%r12
  ud2
  .size dalle_emu_fiber_start, .-dalle_emu_fiber_start
)");

extern "C" void dalle_emu_fiber_switch(FiberContext** save, FiberContext* to);
extern "C" void dalle_emu_fiber_start();

FiberContext* fiber_prepare(const FiberStack& stack, void (*entry)(void*), void* arg) {
  uintptr_t top = reinterpret_cast<uintptr_t>(stack.base + stack.bytes) & ~uintptr_t{15};
  // sp = top - 88 keeps the System V alignment: rsp % 16 == 8 at entry's first instruction.
  uint64_t* sp = reinterpret_cast<uint64_t*>(top - 88);
  uint32_t* modes = reinterpret_cast<uint32_t*>(sp);
  modes[0] = 0x1f80;  // MXCSR: all exceptions masked, round to nearest, no FTZ/DAZ
  modes[1] = 0x037f;  // x87 control word: the power-on default
  sp[1] = 0;
  sp[2] = 0;                                   // r15
  sp[3] = 0;                                   // r14
  sp[4] = reinterpret_cast<uint64_t>(arg);     // r13
  sp[5] = reinterpret_cast<uint64_t>(entry);   // r12
  sp[6] = 0;                                   // rbx
  sp[7] = 0;                                   // rbp
  sp[8] = reinterpret_cast<uint64_t>(&dalle_emu_fiber_start);
  return reinterpret_cast<FiberContext*>(sp);
}

void fiber_switch(FiberContext** save, FiberContext* to) { dalle_emu_fiber_switch(save, to); }

#else
#error "the emulated CUDA device has a fiber switch for x86-64 only"
#endif

}  // namespace emu
}  // namespace dalle

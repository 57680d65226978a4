// Runs a grid on the CPU: blocks spread over the thread pool, each block's threads as fibers on
// one OS thread, switched only where CUDA threads wait for each other (barriers, warp collectives).
// A thread runs until it waits or exits; the last to arrive at a barrier or collective releases
// the others. Misuse that a GPU would turn into a hang or into wrong numbers stops the launch with
// an error instead, naming the kernel, the block and the thread.
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "../../core/threadpool.h"
#include "emu.h"
#include "fiber.h"
#include "scheduler.h"

namespace dalle {
namespace emu {

thread_local const ThreadRegs* t_thread = nullptr;
thread_local BlockRegs t_block;

namespace {

enum class State : uint8_t { kFresh, kReady, kRunning, kBarrier, kWarp, kActiveMask, kDone };

struct PendingCopy {
  void* dst;
  const void* src;
  int bytes;
};

struct Thread {
  ThreadRegs regs;
  unsigned linear = 0;
  State state = State::kFresh;
  FiberContext* ctx = nullptr;
  FiberStack stack;
  WarpPost post;
  const char* site = nullptr;  // where it waits
  WarpResult result;
  int barrier_result = 0;
  std::vector<PendingCopy> copies;  // cp.async, oldest first
  std::vector<size_t> group_ends;   // committed groups: end index into copies
};

struct Warp {
  uint32_t exists = 0;  // lanes the block has
  uint32_t exited = 0;
  uint32_t posted = 0;  // lanes waiting at a collective
};

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::kSyncwarp: return "__syncwarp";
    case WarpOp::kShflIdx: return "__shfl_sync";
    case WarpOp::kShflUp: return "__shfl_up_sync";
    case WarpOp::kShflDown: return "__shfl_down_sync";
    case WarpOp::kShflXor: return "__shfl_xor_sync";
    case WarpOp::kBallot: return "__ballot_sync";
    case WarpOp::kAny: return "__any_sync";
    case WarpOp::kAll: return "__all_sync";
    case WarpOp::kReduceAdd: return "__reduce_add_sync";
    case WarpOp::kReduceMin: return "__reduce_min_sync";
    case WarpOp::kReduceMax: return "__reduce_max_sync";
    case WarpOp::kMmaM16N8K16Bf16: return "mma.sync.m16n8k16 (bf16)";
    case WarpOp::kLdmatrix: return "ldmatrix";
  }
  return "?";
}

// One block in flight on this OS thread.
class Block {
 public:
  Status run(const LaunchSpec& spec, uint64_t linear_block, std::string* error);

  // Called from fibers.
  int barrier(BarrierKind kind, int predicate, const char* site);
  void collective(const WarpPost& post, WarpResult* result, const char* site);
  unsigned wait_active_mask(const char* site);
  void cp_async(void* dst, const void* src, int bytes);
  void cp_async_commit();
  void cp_async_wait(int keep);
  [[noreturn]] void fault(const std::string& what);
  void* dynamic_shared() { return smem_.data() + kSmemGuard; }
  static void fiber_main(void* arg);

 private:
  static constexpr size_t kSmemGuard = 64;
  static constexpr unsigned char kGuardByte = 0xa5;

  std::string where(const Thread& t) const;
  std::string thread_name(const Thread& t) const;
  void wake(Thread& t) {
    t.state = State::kReady;
    ready_.push_back(t.linear);
  }
  void suspend(Thread& t);
  void on_exit(Thread& t);
  void complete(Warp& w, Thread& caller, uint32_t mask);
  bool release_active_masks();
  std::string deadlock_report() const;
  Thread& lane(const Thread& t, unsigned l) { return threads_[t.regs.warp * 32 + l]; }

  const LaunchSpec* spec_ = nullptr;
  std::vector<Thread> threads_;
  std::vector<Warp> warps_;
  std::vector<unsigned> ready_;
  unsigned num_threads_ = 0, done_ = 0, exited_ = 0;
  int first_exited_ = -1;
  // The barrier being gathered.
  unsigned bar_waiting_ = 0;
  const char* bar_site_ = nullptr;
  BarrierKind bar_kind_ = BarrierKind::kSync;
  int bar_acc_ = 0;
  FiberContext* scheduler_ = nullptr;
  Thread* current_ = nullptr;
  bool failed_ = false;
  std::string error_;
  std::vector<unsigned char> smem_;
  std::vector<FiberStack> free_stacks_;
};

thread_local Block* t_running = nullptr;

// DALLE_CUDA_EMU_SCHEDULE=reverse starts a block's threads, and wakes them from a barrier, last
// first. A race between threads of a block (a missing barrier) gives the right answer by luck in
// one order and the wrong one in the other, so running a suite in both orders exposes it.
bool reverse_schedule() {
  static const bool reverse = [] {
    const char* env = std::getenv("DALLE_CUDA_EMU_SCHEDULE");
    return env && std::strcmp(env, "reverse") == 0;
  }();
  return reverse;
}

// A builtin reached outside a kernel (host code calling a device function): nothing to wait for.
bool outside_kernel(const char* what) {
  if (t_running) return false;
  std::fprintf(stderr, "dalle: %s called outside an emulated kernel; ignored\n", what);
  return true;
}

std::string format(const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  return buf;
}

std::string dims(dim3 d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "(%u,%u,%u)", d.x, d.y, d.z);
  return buf;
}

}  // namespace

// ---- the block scheduler --------------------------------------------------------------------

std::string Block::thread_name(const Thread& t) const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "thread (%u,%u,%u) [warp %u lane %u]", t.regs.thread_idx.x, t.regs.thread_idx.y,
                t.regs.thread_idx.z, t.regs.warp, t.regs.lane);
  return buf;
}

std::string Block::where(const Thread& t) const {
  return "kernel " + std::string(spec_->kernel_name) + ", block " +
         dims(dim3(t_block.block_idx.x, t_block.block_idx.y, t_block.block_idx.z)) + " of grid " + dims(spec_->grid) +
         ", " + thread_name(t);
}

void Block::fault(const std::string& what) {
  Thread& t = *current_;
  if (!failed_) {
    failed_ = true;
    error_ = where(t) + ": " + what;
  }
  t.state = State::kDone;  // abandoned: its stack is reclaimed, it is never resumed
  fiber_switch(&t.ctx, scheduler_);
  __builtin_unreachable();
}

void Block::suspend(Thread& t) {
  fiber_switch(&t.ctx, scheduler_);
  // Resumed by the scheduler: t_thread already points at us again.
}

void Block::fiber_main(void* arg) {
  Thread& t = *static_cast<Thread*>(arg);
  Block& b = *t_running;
  b.spec_->body->run();
  b.on_exit(t);
  t.state = State::kDone;
  fiber_switch(&t.ctx, b.scheduler_);
  __builtin_unreachable();
}

void Block::on_exit(Thread& t) {
  // Copies still in flight land eventually on a GPU; here, now.
  for (const PendingCopy& c : t.copies) std::memcpy(c.dst, c.src, static_cast<size_t>(c.bytes));
  t.copies.clear();
  t.group_ends.clear();
  ++exited_;
  if (first_exited_ < 0) first_exited_ = static_cast<int>(t.linear);
  Warp& w = warps_[t.regs.warp];
  w.exited |= 1u << t.regs.lane;
  if (bar_waiting_ > 0) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "exited while %u other thread(s) wait at __syncthreads (%s): a barrier must be reached by every "
                  "thread of the block (%u), none may return before it",
                  bar_waiting_, bar_site_, num_threads_);
    fault(buf);
  }
  for (unsigned l = 0; l < 32; ++l) {
    if (!(w.posted >> l & 1)) continue;
    Thread& o = lane(t, l);
    if (o.post.mask >> t.regs.lane & 1) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "exited while lane %u waits for it in %s (mask 0x%08x) at %s", l,
                    op_name(o.post.op), o.post.mask, o.site);
      fault(buf);
    }
  }
}

int Block::barrier(BarrierKind kind, int predicate, const char* site) {
  Thread& t = *current_;
  char buf[320];
  if (exited_ > 0) {
    std::snprintf(buf, sizeof buf,
                  "reached __syncthreads (%s) after %s had exited: a barrier must be reached by every thread of the "
                  "block (%u), none may return before it",
                  site, thread_name(threads_[first_exited_]).c_str(), num_threads_);
    fault(buf);
  }
  if (bar_waiting_ == 0) {
    bar_site_ = site;
    bar_kind_ = kind;
    bar_acc_ = kind == BarrierKind::kAnd ? 1 : 0;
  } else if (std::strcmp(site, bar_site_) != 0 || kind != bar_kind_) {
    std::snprintf(buf, sizeof buf,
                  "waits at the barrier at %s while %u other thread(s) wait at the one at %s: every thread of the "
                  "block must reach the same __syncthreads",
                  site, bar_waiting_, bar_site_);
    fault(buf);
  }
  Warp& w = warps_[t.regs.warp];
  for (unsigned l = 0; l < 32; ++l) {
    if (!(w.posted >> l & 1)) continue;
    Thread& o = lane(t, l);
    if (o.post.mask >> t.regs.lane & 1) {
      std::snprintf(buf, sizeof buf, "reached __syncthreads (%s) while lane %u of its warp waits for it in %s at %s",
                    site, l, op_name(o.post.op), o.site);
      fault(buf);
    }
  }
  switch (kind) {
    case BarrierKind::kSync: break;
    case BarrierKind::kCount: bar_acc_ += predicate; break;
    case BarrierKind::kAnd: bar_acc_ &= predicate; break;
    case BarrierKind::kOr: bar_acc_ |= predicate; break;
  }
  t.site = site;
  if (++bar_waiting_ < num_threads_) {
    t.state = State::kBarrier;
    suspend(t);
    return t.barrier_result;
  }
  // The last to arrive releases everyone, in schedule order.
  bar_waiting_ = 0;
  for (unsigned k = 0; k < num_threads_; ++k) {
    Thread& o = threads_[reverse_schedule() ? num_threads_ - 1 - k : k];
    if (o.state == State::kBarrier) {
      o.barrier_result = bar_acc_;
      wake(o);
    }
  }
  return bar_acc_;
}

void Block::collective(const WarpPost& post, WarpResult* result, const char* site) {
  Thread& t = *current_;
  Warp& w = warps_[t.regs.warp];
  const unsigned me = t.regs.lane;
  const char* name = op_name(post.op);
  char buf[320];
  if (!(post.mask >> me & 1)) {
    std::snprintf(buf, sizeof buf, "%s at %s with mask 0x%08x, which does not include the calling lane %u", name, site,
                  post.mask, me);
    fault(buf);
  }
  if (uint32_t missing = post.mask & ~w.exists) {
    std::snprintf(buf, sizeof buf,
                  "%s at %s with mask 0x%08x names lane %d, which does not exist (the block has %u threads; this warp "
                  "has lanes 0-%d)",
                  name, site, post.mask, __builtin_ctz(missing), num_threads_, 31 - __builtin_clz(w.exists));
    fault(buf);
  }
  if (uint32_t gone = post.mask & w.exited) {
    std::snprintf(buf, sizeof buf, "%s at %s with mask 0x%08x names lane %d, which has already exited", name, site,
                  post.mask, __builtin_ctz(gone));
    fault(buf);
  }
  for (unsigned l = 0; l < 32; ++l) {
    if (l == me || !(post.mask >> l & 1)) continue;
    Thread& o = lane(t, l);
    if (o.state == State::kBarrier) {
      std::snprintf(buf, sizeof buf, "%s at %s names lane %u, which waits at __syncthreads (%s) for this lane", name,
                    site, l, o.site);
      fault(buf);
    }
    // Lane l waits for us (we are in its mask) at a different collective, and we wait for it.
    if (o.state == State::kWarp && (o.post.mask >> me & 1) && (o.post.op != post.op || o.post.mask != post.mask)) {
      std::snprintf(buf, sizeof buf,
                    "%s at %s with mask 0x%08x while lane %u waits in %s with mask 0x%08x at %s: the lanes named in a "
                    "mask must all execute the same collective with the same mask",
                    name, site, post.mask, l, op_name(o.post.op), o.post.mask, o.site);
      fault(buf);
    }
  }
  t.post = post;
  t.site = site;
  w.posted |= 1u << me;
  if ((w.posted & post.mask) == post.mask) {
    complete(w, t, post.mask);
  } else {
    t.state = State::kWarp;
    suspend(t);
  }
  *result = t.result;
}

// Every lane named in `mask` has posted: compute each lane's result and release them.
void Block::complete(Warp& w, Thread& caller, uint32_t mask) {
  Thread* lanes[32] = {};
  for (unsigned l = 0; l < 32; ++l)
    if (mask >> l & 1) lanes[l] = &lane(caller, l);
  const WarpPost& p = caller.post;
  char buf[320];
  auto need_full = [&] {
    if (mask != 0xffffffffu) {
      std::snprintf(buf, sizeof buf, "%s at %s with mask 0x%08x: it is executed by all 32 lanes of a warp together",
                    op_name(p.op), caller.site, mask);
      fault(buf);
    }
  };
  switch (p.op) {
    case WarpOp::kSyncwarp: break;
    case WarpOp::kShflIdx:
    case WarpOp::kShflUp:
    case WarpOp::kShflDown:
    case WarpOp::kShflXor:
      for (unsigned l = 0; l < 32; ++l) {
        if (!lanes[l]) continue;
        const WarpPost& q = lanes[l]->post;
        int width = q.width;
        if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
          std::snprintf(buf, sizeof buf, "%s at %s: width %d is not a power of two in [1, 32]", op_name(q.op),
                        lanes[l]->site, width);
          fault(buf);
        }
        unsigned seg = l & ~static_cast<unsigned>(width - 1), in_seg = l & static_cast<unsigned>(width - 1);
        int src = static_cast<int>(l);
        if (q.op == WarpOp::kShflIdx) {
          src = static_cast<int>(seg | (static_cast<unsigned>(q.arg) & static_cast<unsigned>(width - 1)));
        } else if (q.arg < 0) {
          std::snprintf(buf, sizeof buf, "%s at %s: negative lane offset %d", op_name(q.op), lanes[l]->site, q.arg);
          fault(buf);
        } else if (q.op == WarpOp::kShflUp) {
          if (in_seg >= static_cast<unsigned>(q.arg)) src = static_cast<int>(l) - q.arg;
        } else if (q.op == WarpOp::kShflDown) {
          if (in_seg + static_cast<unsigned>(q.arg) < static_cast<unsigned>(width)) src = static_cast<int>(l) + q.arg;
        } else {
          unsigned x = l ^ static_cast<unsigned>(q.arg);
          // CUDA: a lane may read earlier segments; reading a later one returns its own value.
          if (x < 32 && (x & ~static_cast<unsigned>(width - 1)) <= seg) src = static_cast<int>(x);
        }
        if (!lanes[src]) {
          std::snprintf(buf, sizeof buf,
                        "%s at %s: lane %u reads lane %d, which is not in the mask 0x%08x (the value read is "
                        "undefined on a GPU)",
                        op_name(q.op), lanes[l]->site, l, src, mask);
          fault(buf);
        }
        std::memcpy(lanes[l]->result.data, lanes[src]->post.data, sizeof p.data);
      }
      break;
    case WarpOp::kBallot:
    case WarpOp::kAny:
    case WarpOp::kAll: {
      uint32_t ballot = 0;
      for (unsigned l = 0; l < 32; ++l)
        if (lanes[l] && bits_as<int32_t>(lanes[l]->post.data)) ballot |= 1u << l;
      uint32_t r = p.op == WarpOp::kBallot ? ballot : p.op == WarpOp::kAny ? (ballot != 0) : (ballot == mask);
      for (unsigned l = 0; l < 32; ++l)
        if (lanes[l]) std::memcpy(lanes[l]->result.data, &r, sizeof r);
      break;
    }
    case WarpOp::kReduceAdd:
    case WarpOp::kReduceMin:
    case WarpOp::kReduceMax: {
      bool is_signed = p.width == 1;
      int64_t acc = 0;
      bool first = true;
      for (unsigned l = 0; l < 32; ++l) {
        if (!lanes[l]) continue;
        int64_t v = is_signed ? int64_t{bits_as<int32_t>(lanes[l]->post.data)} : int64_t{bits_as<uint32_t>(lanes[l]->post.data)};
        if (first) acc = v;
        else if (p.op == WarpOp::kReduceAdd) acc += v;
        else if (p.op == WarpOp::kReduceMin) acc = v < acc ? v : acc;
        else acc = v > acc ? v : acc;
        first = false;
      }
      uint32_t r = static_cast<uint32_t>(acc);  // wraps modulo 2^32, as the hardware's adder does
      for (unsigned l = 0; l < 32; ++l)
        if (lanes[l]) std::memcpy(lanes[l]->result.data, &r, sizeof r);
      break;
    }
    case WarpOp::kMmaM16N8K16Bf16: {
      need_full();
      float a[16][16], b[16][8], c[16][8];
      for (unsigned l = 0; l < 32; ++l) mma_m16n8k16_gather(l, lanes[l]->post.data, a, b, c);
      float d[16][8];
      mma_m16n8k16_compute(a, b, c, d);
      for (unsigned l = 0; l < 32; ++l) mma_m16n8k16_scatter(l, d, lanes[l]->result.data);
      break;
    }
    case WarpOp::kLdmatrix: {
      need_full();
      const unsigned char* posts[32];
      unsigned char* results[32];
      for (unsigned l = 0; l < 32; ++l) {
        posts[l] = lanes[l]->post.data;
        results[l] = lanes[l]->result.data;
      }
      const char* bad = ldmatrix_complete(posts, results, p.arg, p.width != 0);
      if (bad) {
        std::snprintf(buf, sizeof buf, "ldmatrix at %s: %s", caller.site, bad);
        fault(buf);
      }
      break;
    }
  }
  w.posted &= ~mask;
  for (unsigned l = 0; l < 32; ++l)
    if (lanes[l] && lanes[l] != &caller) wake(*lanes[l]);
}

unsigned Block::wait_active_mask(const char* site) {
  Thread& t = *current_;
  t.site = site;
  t.state = State::kActiveMask;
  suspend(t);
  return bits_as<uint32_t>(t.result.data);
}

// When nothing can run: each group of lanes of a warp waiting at the same __activemask() learns
// that group, the lanes that converged there.
bool Block::release_active_masks() {
  bool any = false;
  for (Thread& t : threads_) {
    if (t.state != State::kActiveMask) continue;
    uint32_t group = 0;
    for (unsigned l = 0; l < 32; ++l) {
      Thread& o = lane(t, l);
      if ((warps_[t.regs.warp].exists >> l & 1) && o.state == State::kActiveMask && std::strcmp(o.site, t.site) == 0)
        group |= 1u << l;
    }
    for (unsigned l = 0; l < 32; ++l)
      if (group >> l & 1) {
        Thread& o = lane(t, l);
        std::memcpy(o.result.data, &group, sizeof group);
        wake(o);
      }
    any = true;
  }
  return any;
}

std::string Block::deadlock_report() const {
  std::string s = "the block cannot make progress:";
  int shown = 0;
  for (const Thread& t : threads_) {
    if (t.state == State::kDone) continue;
    if (++shown > 4) {
      s += " ...";
      break;
    }
    s += " " + thread_name(t);
    if (t.state == State::kBarrier) s += " waits at __syncthreads (" + std::string(t.site) + ");";
    else if (t.state == State::kWarp) {
      char buf[160];
      std::snprintf(buf, sizeof buf, " waits in %s (mask 0x%08x) at %s;", op_name(t.post.op), t.post.mask, t.site);
      s += buf;
    }
  }
  return s;
}

Status Block::run(const LaunchSpec& spec, uint64_t linear_block, std::string* error) {
  spec_ = &spec;
  const dim3 g = spec.grid, bd = spec.block;
  t_block.block_idx = uint3{static_cast<unsigned>(linear_block % g.x), static_cast<unsigned>(linear_block / g.x % g.y),
                            static_cast<unsigned>(linear_block / (uint64_t{g.x} * g.y))};
  t_block.block_dim = bd;
  t_block.grid_dim = g;
  num_threads_ = bd.x * bd.y * bd.z;
  threads_.resize(num_threads_);
  warps_.assign((num_threads_ + 31) / 32, Warp{});
  for (unsigned i = 0; i < num_threads_; ++i) {
    Thread& t = threads_[i];
    t.regs.thread_idx = uint3{i % bd.x, i / bd.x % bd.y, i / (bd.x * bd.y)};
    t.regs.lane = i % 32;
    t.regs.warp = i / 32;
    t.linear = i;
    t.state = State::kFresh;
    t.copies.clear();
    t.group_ends.clear();
    warps_[i / 32].exists |= 1u << (i % 32);
  }
  done_ = exited_ = bar_waiting_ = 0;
  first_exited_ = -1;
  failed_ = false;
  error_.clear();
  // Dynamic shared memory: fresh garbage for every block, guard bytes on both sides.
  smem_.assign(spec.dynamic_smem + 2 * kSmemGuard, kGuardByte);
  std::memset(smem_.data() + kSmemGuard, 0xff, spec.dynamic_smem);
  ready_.clear();
  for (unsigned i = 0; i < num_threads_; ++i) ready_.push_back(reverse_schedule() ? num_threads_ - 1 - i : i);

  t_running = this;
  size_t head = 0;
  for (;;) {
    while (head < ready_.size() && !failed_) {
      Thread& t = threads_[ready_[head++]];
      if (t.state == State::kFresh) {
        if (free_stacks_.empty()) {
          FiberStack s;
          if (!fiber_stack_alloc(fiber_stack_bytes(), &s)) {
            failed_ = true;
            error_ = "kernel " + std::string(spec.kernel_name) + ": out of memory for fiber stacks";
            break;
          }
          free_stacks_.push_back(s);
        }
        t.stack = free_stacks_.back();
        free_stacks_.pop_back();
        t.ctx = fiber_prepare(t.stack, &Block::fiber_main, &t);
      }
      t.state = State::kRunning;
      current_ = &t;
      t_thread = &t.regs;
      fiber_switch(&scheduler_, t.ctx);
      t_thread = nullptr;
      current_ = nullptr;
      if (t.state == State::kDone) {
        ++done_;
        free_stacks_.push_back(t.stack);
        t.stack = FiberStack{};
      }
    }
    if (failed_ || done_ == num_threads_) break;
    ready_.clear();
    head = 0;
    if (release_active_masks()) continue;
    failed_ = true;
    error_ = "kernel " + std::string(spec.kernel_name) + ", block " +
             dims(dim3(t_block.block_idx.x, t_block.block_idx.y, t_block.block_idx.z)) + ": " + deadlock_report();
  }
  t_running = nullptr;
  // Threads abandoned by a fault keep no state worth resuming; their stacks are reused.
  for (Thread& t : threads_)
    if (t.stack.base) {
      free_stacks_.push_back(t.stack);
      t.stack = FiberStack{};
    }
  if (!failed_) {
    for (size_t i = 0; i < smem_.size(); ++i) {
      if (i == kSmemGuard) i += spec.dynamic_smem;
      if (i < smem_.size() && smem_[i] != kGuardByte) {
        long off = i < kSmemGuard ? -static_cast<long>(kSmemGuard - i) : static_cast<long>(i - kSmemGuard - spec.dynamic_smem);
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      "kernel %s, block %s: a write outside its %zu bytes of dynamic shared memory (%s byte %ld %s)",
                      spec.kernel_name, dims(dim3(t_block.block_idx.x, t_block.block_idx.y, t_block.block_idx.z)).c_str(),
                      spec.dynamic_smem, off < 0 ? "the" : "the", off < 0 ? -off : off + 1,
                      off < 0 ? "before its start" : "past its end");
        failed_ = true;
        error_ = buf;
        break;
      }
    }
  }
  if (failed_) {
    *error = error_;
    return make_status(StatusCode::kCudaError, "%s", error_.c_str());
  }
  return Status::Ok();
}

void Block::cp_async(void* dst, const void* src, int bytes) { current_->copies.push_back({dst, src, bytes}); }
void Block::cp_async_commit() { current_->group_ends.push_back(current_->copies.size()); }
void Block::cp_async_wait(int keep) {
  Thread& t = *current_;
  if (keep < 0) keep = 0;
  size_t groups = t.group_ends.size();
  if (groups <= static_cast<size_t>(keep)) return;
  size_t retire = t.group_ends[groups - 1 - static_cast<size_t>(keep)];
  for (size_t i = 0; i < retire; ++i) std::memcpy(t.copies[i].dst, t.copies[i].src, static_cast<size_t>(t.copies[i].bytes));
  t.copies.erase(t.copies.begin(), t.copies.begin() + static_cast<long>(retire));
  t.group_ends.erase(t.group_ends.begin(), t.group_ends.end() - keep);
  for (size_t& e : t.group_ends) e -= retire;
}

// ---- the builtins' entry points -------------------------------------------------------------

int block_barrier(BarrierKind kind, int predicate, const char* site) {
  if (outside_kernel("__syncthreads")) return predicate;
  return t_running->barrier(kind, predicate, site);
}

void warp_collective(const WarpPost& post, WarpResult* result, const char* site) {
  if (outside_kernel("a warp collective")) {
    std::memcpy(result->data, post.data, sizeof result->data);
    return;
  }
  t_running->collective(post, result, site);
}

unsigned active_mask_at(const char* site) {
  if (outside_kernel("__activemask")) return 1;
  return t_running->wait_active_mask(site);
}

void kernel_fault(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string msg = format(fmt, ap);
  va_end(ap);
  if (!t_running) {
    std::fprintf(stderr, "dalle: %s (outside an emulated kernel; ignored)\n", msg.c_str());
    return;
  }
  t_running->fault(msg);
}

void* dynamic_shared_base() { return t_running ? t_running->dynamic_shared() : nullptr; }

void cp_async(void* dst, const void* src, int bytes) {
  if (t_running) t_running->cp_async(dst, src, bytes);
  else std::memcpy(dst, src, static_cast<size_t>(bytes));
}
void cp_async_commit() {
  if (t_running) t_running->cp_async_commit();
}
void cp_async_wait(int keep_pending) {
  if (t_running) t_running->cp_async_wait(keep_pending);
}

// ---- grids ----------------------------------------------------------------------------------

Status run_blocks(const LaunchSpec& spec, uint64_t num_blocks, std::string* error) {
  std::mutex mu;
  bool failed = false;
  uint64_t failed_block = 0;
  std::atomic<bool> stop{false};
  // One Block per OS thread, reused across launches (fiber stacks stay mapped).
  static thread_local Block* block = nullptr;
  ThreadPool::global().parallel_for(static_cast<int64_t>(num_blocks), 1, [&](int64_t begin, int64_t end) {
    if (!block) block = new Block();
    for (int64_t b = begin; b < end && !stop.load(std::memory_order_relaxed); ++b) {
      std::string why;
      Status st = block->run(spec, static_cast<uint64_t>(b), &why);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        // The lowest failing block is reported, so a message does not depend on the pool's timing more than it must.
        if (!failed || static_cast<uint64_t>(b) < failed_block) {
          failed = true;
          failed_block = static_cast<uint64_t>(b);
          *error = why;
        }
        stop = true;
      }
    }
  });
  if (failed) return make_status(StatusCode::kCudaError, "%s", error->c_str());
  return Status::Ok();
}

}  // namespace emu
}  // namespace dalle

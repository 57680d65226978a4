// Internal to the attention kernels: attribute parsing shared by every attention op, and the
// slot scheduler that lets each worker own preallocated scratch.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../common.h"
#include "attention_masks.h"

namespace dalle {
namespace attn_detail {

// Keeps W·W and the conv range count far from overflow; real grids are 8..64.
constexpr int64_t kMaxGrid = 1 << 14;

// mask, text_len, grid for a sequence of S positions: S - text_len image positions must fit W×W.
inline Status read_pattern(const OpArgs& a, int64_t S, AttnPattern* p) {
  int64_t kind = 0, T = 0, W = 0;
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "mask", kAttnCausal, kAttnConv, &kind));
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "text_len", 0, S, &T));
  DALLE_RETURN_IF_ERROR(a.attrs.get_int(a.op, "grid", 1, kMaxGrid, &W));
  DALLE_CHECK_ARG(S - T <= W * W,
                  "%s: %lld image positions (S = %lld minus text_len = %lld) do not fit a %lldx%lld grid",
                  a.op, static_cast<long long>(S - T), static_cast<long long>(S),
                  static_cast<long long>(T), static_cast<long long>(W), static_cast<long long>(W));
  *p = make_attn_pattern(static_cast<int>(kind), T, W);
  return Status::Ok();
}

// Optional `scale`, default 1/sqrt(D).
inline Status read_scale(const OpArgs& a, int64_t D, float* scale) {
  double s = 1.0 / std::sqrt(static_cast<double>(D));
  if (a.attrs.has("scale")) DALLE_RETURN_IF_ERROR(a.attrs.get_num(a.op, "scale", &s));
  DALLE_CHECK_ARG(std::fabs(s) <= 1e30, "%s: attribute 'scale' = %g is out of range", a.op, s);
  *scale = static_cast<float>(s);
  return Status::Ok();
}

// How many scratch slots to spread `tasks` over: a few per thread, for balance.
inline int64_t worker_slots(int64_t tasks) {
  int64_t threads = ThreadPool::global().num_threads();
  return std::max<int64_t>(1, std::min<int64_t>(tasks, 4 * threads));
}

// fn(slot, task) for every task; task t runs on slot t % slots, and one slot's tasks run in order
// on one thread, so scratch indexed by slot needs no locking. Interleaving spreads the cheap
// early (causal) query blocks and the expensive late ones over all slots. Scratch is allocated
// by the caller before this, on the calling thread, where std::bad_alloc is caught.
template <typename F>
inline void for_each_task(int64_t tasks, int64_t slots, F&& fn) {
  parallel_for(slots, 1, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s)
      for (int64_t t = s; t < tasks; t += slots) fn(s, t);
  });
}

}  // namespace attn_detail
}  // namespace dalle

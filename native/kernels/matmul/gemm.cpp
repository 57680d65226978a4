// The CPU sgemm, GotoBLAS/BLIS style. The product is cut into slices of up to kSliceRows rows
// of op(A), kc of depth and nc columns. Per slice, op(A) is packed into MR-row panels shared by
// all threads; then each task packs its own range of op(B) into NR-column panels and sweeps
// them with the micro-kernel of the active SIMD level, mc rows at a time: the mc×kc block of A
// stays in L2 while the task's B panels take turns, each B panel in L1 while A streams past.
// When there are too few column panels to go round the threads (small N), B is packed up front
// and tasks split the rows instead. M = 1 or N = 1 skip packing (gemv_sgemm).
//
// Threads: one parallel_for per product. Every task of every slice is numbered and claimed from
// one atomic counter, so a pool worker that wakes late, or a core slowed by another process,
// costs only its own share; tasks wait on the tasks they depend on, never on a barrier.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "../../core/backend.h"
#include "../common.h"
#include "gemm_kernels.h"

namespace dalle {
namespace gemm {

void microkernel_scalar(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                        float alpha, float beta, int64_t m, int64_t n) {
  constexpr int MR = kScalarMR, NR = kScalarNR;
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p, ap += MR, bp += NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ap[i] * bp[j];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float v = alpha * acc[i][j];
      c[i * ldc + j] = beta == 0.0f ? v : v + beta * c[i * ldc + j];
    }
}

namespace {

// op(A) rows [0, mr) × depth [0, kc), `a` pointing at element (0, 0), into one MR-row panel.
template <int MR>
void pack_a_panel(bool trans_a, const float* a, int64_t lda, int64_t mr, int64_t kc, float* dst) {
  if (trans_a) {  // op(A)[i, p] = a[p·lda + i]: each k step is a contiguous run of rows
    for (int64_t p = 0; p < kc; ++p, dst += MR) {
      const float* src = a + p * lda;
      if (mr == MR) {
        for (int i = 0; i < MR; ++i) dst[i] = src[i];
      } else {
        for (int64_t i = 0; i < MR; ++i) dst[i] = i < mr ? src[i] : 0.0f;
      }
    }
    return;
  }
  // op(A)[i, p] = a[i·lda + p]: walk MR row streams in step, writing the panel sequentially.
  if (mr == MR) {
    const float* rows[MR];
    for (int i = 0; i < MR; ++i) rows[i] = a + i * lda;
    for (int64_t p = 0; p < kc; ++p, dst += MR)
      for (int i = 0; i < MR; ++i) dst[i] = rows[i][p];
    return;
  }
  for (int64_t p = 0; p < kc; ++p, dst += MR)
    for (int64_t i = 0; i < MR; ++i) dst[i] = i < mr ? a[i * lda + p] : 0.0f;
}

// op(B) depth [0, kc) × columns [0, nr), `b` pointing at element (0, 0), into one NR-column panel.
template <int NR>
void pack_b_panel(bool trans_b, const float* b, int64_t ldb, int64_t nr, int64_t kc, float* dst) {
  if (!trans_b) {  // op(B)[p, j] = b[p·ldb + j]: a contiguous run per k step
    if (nr == NR) {
      for (int64_t p = 0; p < kc; ++p, dst += NR) {
        const float* src = b + p * ldb;
        for (int j = 0; j < NR; ++j) dst[j] = src[j];
      }
    } else {
      for (int64_t p = 0; p < kc; ++p, dst += NR) {
        const float* src = b + p * ldb;
        for (int64_t j = 0; j < NR; ++j) dst[j] = j < nr ? src[j] : 0.0f;
      }
    }
    return;
  }
  // op(B)[p, j] = b[j·ldb + p]: read each of the nr rows contiguously, scatter by NR.
  for (int64_t j = 0; j < NR; ++j) {
    if (j < nr) {
      const float* src = b + j * ldb;
      for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = src[p];
    } else {
      for (int64_t p = 0; p < kc; ++p) dst[p * NR + j] = 0.0f;
    }
  }
}

struct KernelDef {
  const char* name;
  int64_t mr, nr;
  MicroKernel ukr;
  PackA pack_a;
  PackB pack_b;
  // Defaults. mc·kc floats of A stay in L2 (2 MiB on the Sapphire Rapids this was tuned on),
  // a kc×NR panel of B in L1 (48 KiB).
  Blocking blocking;
};

const KernelDef kKernels[] = {
    {"scalar-4x8", kScalarMR, kScalarNR, microkernel_scalar, pack_a_panel<kScalarMR>,
     pack_b_panel<kScalarNR>, {256, 256, 2048}},
    {"avx2-6x16", kAvx2MR, kAvx2NR, microkernel_avx2, pack_a_avx2, pack_b_avx2,
     {120, 384, 2048}},
    {"avx512-14x32", kAvx512MR, kAvx512NR, microkernel_avx512, pack_a_avx512, pack_b_avx512,
     {224, 512, 2048}},
};

std::atomic<int64_t> g_mc{0}, g_kc{0}, g_nc{0};

const KernelDef& active_kernel() { return kKernels[static_cast<int>(active_simd_level())]; }

Blocking blocking_for(const KernelDef& k) {
  Blocking b = k.blocking;
  if (int64_t v = g_mc.load()) b.mc = v;
  if (int64_t v = g_kc.load()) b.kc = v;
  if (int64_t v = g_nc.load()) b.nc = v;
  b.mc = std::max<int64_t>(k.mr, b.mc / k.mr * k.mr);
  b.nc = std::max<int64_t>(k.nr, b.nc / k.nr * k.nr);
  b.kc = std::max<int64_t>(1, b.kc);
  return b;
}

// Rows of A packed per slice, shared by all threads (B is packed once per slice, so the more
// rows, the less B is packed again).
constexpr int64_t kSliceRows = 2048;
// Below this many flops (about 128³) a product runs on the calling thread. Pool workers spin
// briefly before sleeping (core/threadpool.cpp), so handing off costs a few µs, not a wake-up.
constexpr double kParallelFlops = 4e6;
// Matrix-vector products are bound by memory bandwidth rather than flops: split them sooner.
constexpr double kParallelGemvFlops = 2e6;
// Floats per packing task (several panels); compute tasks per thread per slice: enough that a
// core slowed by other work, or a worker that wakes late, still gets a fair share, few enough
// that each task reuses its A blocks over several B panels (2-4 measured best; 16 lost 5-8%).
constexpr int64_t kPackTaskFloats = 16384;
constexpr int64_t kTasksPerThread = 4;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Per-thread, 64-byte aligned, grown on demand and kept: packing never allocates once warm.
struct Scratch {
  float* ptr = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(ptr); }
  float* get(size_t floats) {
    if (floats <= cap) return ptr;
    const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (p == nullptr) return nullptr;
    std::free(ptr);
    ptr = static_cast<float*>(p);
    cap = bytes / sizeof(float);
    return ptr;
  }
};
thread_local Scratch t_scratch;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins briefly (the producer is running on another core), then yields the core to it.
template <typename Pred>
void wait_until(Pred ready) {
  for (int spins = 0; !ready(); ++spins) {
    if (spins < 4096)
      cpu_relax();
    else
      std::this_thread::yield();
  }
}

// Slices run jc (columns) → ic (rows) → pc (depth, innermost), so consecutive slices of one
// C block accumulate into it in order. Each slice is a packing phase (A panels; B panels too in
// row-split mode) into its half of a double buffer, then compute tasks. A task waits only on
// tasks numbered before it:
//   pack(s):    all packs of earlier slices and all computes of slices < s-1 (its buffer half
//               was last read by slice s-2);
//   compute(s): all packs up to s and all computes of earlier slices (same C block, beta first).
// Each kind therefore finishes in slice order, and running counts say what is done.
struct Team {
  const KernelDef* kd;
  bool trans_a, trans_b;
  int64_t M, N, K;
  float alpha, beta;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
  int64_t mc_step, kc_step, nc_step;  // balanced slice sizes
  int64_t mc_block;                   // rows of A per L2 block inside a task
  int64_t n_jc, n_ic, n_pc, slices;
  int threads;
  float* abuf[2];
  float* bbuf[2];
  alignas(64) std::atomic<int64_t> next{0};
  alignas(64) std::atomic<int64_t> packs_done{0};
  alignas(64) std::atomic<int64_t> computes_done{0};
};

struct Slice {
  int64_t jc, nc, ic, mcc, pc, kc;
  int64_t npa, npb;                   // MR-row panels of A, NR-column panels of B
  int64_t a_group, b_group;           // panels per packing task
  int64_t pack_a_tasks, pack_tasks;   // A's packing tasks come first
  bool split_rows;                    // B packed in the packing phase, tasks split rows too
  int64_t rows_per_task, row_tasks, panels_per_task, col_tasks, compute_tasks;
  float* ap;
  float* bp;
};

Slice slice_at(const Team& t, int64_t s) {
  const KernelDef& kd = *t.kd;
  Slice sl;
  const int64_t pci = s % t.n_pc, ici = (s / t.n_pc) % t.n_ic, jci = s / (t.n_pc * t.n_ic);
  sl.jc = jci * t.nc_step;
  sl.nc = std::min(t.nc_step, t.N - sl.jc);
  sl.ic = ici * t.mc_step;
  sl.mcc = std::min(t.mc_step, t.M - sl.ic);
  sl.pc = pci * t.kc_step;
  sl.kc = std::min(t.kc_step, t.K - sl.pc);
  sl.npa = ceil_div(sl.mcc, kd.mr);
  sl.npb = ceil_div(sl.nc, kd.nr);
  sl.a_group = std::max<int64_t>(1, kPackTaskFloats / (kd.mr * sl.kc));
  sl.b_group = std::max<int64_t>(1, kPackTaskFloats / (kd.nr * sl.kc));
  sl.pack_a_tasks = ceil_div(sl.npa, sl.a_group);
  const int64_t want = t.threads > 1 ? kTasksPerThread * t.threads : 1;
  sl.split_rows = t.threads > 1 && sl.npb < 2 * t.threads;
  if (!sl.split_rows) {
    sl.pack_tasks = sl.pack_a_tasks;
    sl.rows_per_task = sl.mcc;
    sl.panels_per_task = ceil_div(sl.npb, std::min(sl.npb, want));
  } else {
    sl.pack_tasks = sl.pack_a_tasks + ceil_div(sl.npb, sl.b_group);
    sl.panels_per_task = 1;
    sl.rows_per_task = round_up(ceil_div(sl.mcc, ceil_div(want, sl.npb)), kd.mr);
  }
  sl.col_tasks = ceil_div(sl.npb, sl.panels_per_task);
  sl.row_tasks = ceil_div(sl.mcc, sl.rows_per_task);
  sl.compute_tasks = sl.row_tasks * sl.col_tasks;
  sl.ap = t.abuf[s & 1];
  sl.bp = t.bbuf[s & 1];
  return sl;
}

void pack_b_panels(const Team& t, const Slice& sl, int64_t q0, int64_t q1) {
  const KernelDef& kd = *t.kd;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t j = sl.jc + q * kd.nr;
    const float* src = t.trans_b ? t.B + j * t.ldb + sl.pc : t.B + sl.pc * t.ldb + j;
    kd.pack_b(t.trans_b, src, t.ldb, std::min(kd.nr, t.N - j), sl.kc, sl.bp + q * kd.nr * sl.kc);
  }
}

void pack_task(const Team& t, const Slice& sl, int64_t task) {
  const KernelDef& kd = *t.kd;
  if (task >= sl.pack_a_tasks) {
    task -= sl.pack_a_tasks;
    pack_b_panels(t, sl, task * sl.b_group, std::min(sl.npb, (task + 1) * sl.b_group));
    return;
  }
  const int64_t p1 = std::min(sl.npa, (task + 1) * sl.a_group);
  for (int64_t p = task * sl.a_group; p < p1; ++p) {
    const int64_t i = sl.ic + p * kd.mr;
    const float* src = t.trans_a ? t.A + sl.pc * t.lda + i : t.A + i * t.lda + sl.pc;
    kd.pack_a(t.trans_a, src, t.lda, std::min(kd.mr, t.M - i), sl.kc, sl.ap + p * kd.mr * sl.kc);
  }
}

// B panels [q0, q1) against rows [i0, i1) of the slice, in mc-row blocks: the block of A stays
// in L2 while the task's B panels take turns, and each kc×NR B panel stays in L1 while the A
// panels of the block stream past it.
void compute_task(const Team& t, const Slice& sl, int64_t task) {
  const KernelDef& kd = *t.kd;
  const int64_t i0 = (task / sl.col_tasks) * sl.rows_per_task;
  const int64_t i1 = std::min(sl.mcc, i0 + sl.rows_per_task);
  const int64_t q0 = (task % sl.col_tasks) * sl.panels_per_task;
  const int64_t q1 = std::min(sl.npb, q0 + sl.panels_per_task);
  const float beta = sl.pc == 0 ? t.beta : 1.0f;
  if (!sl.split_rows) pack_b_panels(t, sl, q0, q1);  // this task's own panels, still in cache
  for (int64_t ib = i0; ib < i1; ib += t.mc_block) {
    const int64_t ie = std::min(i1, ib + t.mc_block);
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t j = sl.jc + q * kd.nr;
      const int64_t nr = std::min(kd.nr, t.N - j);
      const float* bpanel = sl.bp + q * kd.nr * sl.kc;
      for (int64_t i = ib; i < ie; i += kd.mr)
        kd.ukr(sl.kc, sl.ap + i * sl.kc, bpanel, t.C + (sl.ic + i) * t.ldc + j, t.ldc, t.alpha,
               beta, std::min(kd.mr, sl.mcc - i), nr);
    }
  }
}

// What each participating thread runs: claim the next task until there are none.
void participate(Team& t) {
  int64_t s = 0, base = 0;
  int64_t packs_before = 0;          // packing tasks of slices < s
  int64_t computes_before = 0;       // compute tasks of slices < s
  int64_t computes_before_prev = 0;  // compute tasks of slices < s-1
  Slice sl = slice_at(t, 0);
  for (;;) {
    const int64_t task = t.next.fetch_add(1, std::memory_order_relaxed);
    while (task >= base + sl.pack_tasks + sl.compute_tasks) {
      base += sl.pack_tasks + sl.compute_tasks;
      packs_before += sl.pack_tasks;
      computes_before_prev = computes_before;
      computes_before += sl.compute_tasks;
      if (++s >= t.slices) return;
      sl = slice_at(t, s);
    }
    const int64_t local = task - base;
    if (local < sl.pack_tasks) {
      wait_until([&] {
        return t.packs_done.load(std::memory_order_acquire) >= packs_before &&
               t.computes_done.load(std::memory_order_acquire) >= computes_before_prev;
      });
      pack_task(t, sl, local);
      t.packs_done.fetch_add(1, std::memory_order_release);
    } else {
      wait_until([&] {
        return t.packs_done.load(std::memory_order_acquire) >= packs_before + sl.pack_tasks &&
               t.computes_done.load(std::memory_order_acquire) >= computes_before;
      });
      compute_task(t, sl, local - sl.pack_tasks);
      t.computes_done.fetch_add(1, std::memory_order_release);
    }
  }
}

// Splits `total` into equal steps of at most `step_max`, rounded up to `unit`: M = 1100 with
// mc = 1022 becomes 2 × 560, not 1022 + 78.
int64_t balanced_step(int64_t total, int64_t step_max, int64_t unit) {
  return round_up(ceil_div(total, ceil_div(total, step_max)), unit);
}

// False when the packing buffers cannot be allocated (the caller falls back).
bool blocked_sgemm(const KernelDef& kd, bool trans_a, bool trans_b, int64_t M, int64_t N,
                   int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                   int64_t ldb, float beta, float* C, int64_t ldc, bool threaded) {
  const Blocking bl = blocking_for(kd);
  Team t;
  t.kd = &kd;
  t.trans_a = trans_a;
  t.trans_b = trans_b;
  t.M = M;
  t.N = N;
  t.K = K;
  t.alpha = alpha;
  t.beta = beta;
  t.A = A;
  t.lda = lda;
  t.B = B;
  t.ldb = ldb;
  t.C = C;
  t.ldc = ldc;
  t.mc_step = balanced_step(M, kSliceRows, kd.mr);
  t.mc_block = balanced_step(t.mc_step, bl.mc, kd.mr);
  t.kc_step = balanced_step(K, bl.kc, 1);
  t.nc_step = balanced_step(N, bl.nc, kd.nr);
  t.n_jc = ceil_div(N, t.nc_step);
  t.n_ic = ceil_div(M, t.mc_step);
  t.n_pc = ceil_div(K, t.kc_step);
  t.slices = t.n_jc * t.n_ic * t.n_pc;
  t.threads = threaded ? ThreadPool::global().num_threads() : 1;
  // Whole cache lines, so every B panel stays 64-byte aligned.
  const int64_t a_floats = round_up(t.mc_step * t.kc_step, 16);
  const int64_t b_floats = round_up(t.nc_step * t.kc_step, 16);
  const int64_t halves = t.slices > 1 ? 2 : 1;
  float* buf = t_scratch.get(static_cast<size_t>(halves * (a_floats + b_floats)));
  if (buf == nullptr) return false;
  t.abuf[0] = buf;
  t.bbuf[0] = buf + a_floats;
  t.abuf[1] = halves > 1 ? buf + a_floats + b_floats : t.abuf[0];
  t.bbuf[1] = halves > 1 ? t.abuf[1] + a_floats : t.bbuf[0];
  if (t.threads > 1)
    parallel_for(t.threads, 1, [&](int64_t, int64_t) { participate(t); });
  else
    participate(t);
  return true;
}

// Matrix-vector products (M = 1 or N = 1: sampling one token at a time) are bound by reading
// the matrix once; packing it would double that and the micro-kernel would waste most lanes.
// Sums use eight partial accumulators so the compiler can keep them in vector registers.
float dot(const float* x, int64_t incx, const float* y, int64_t n) {
  float s[8] = {};
  int64_t k = 0;
  if (incx == 1)
    for (; k + 8 <= n; k += 8)
      for (int u = 0; u < 8; ++u) s[u] += x[k + u] * y[k + u];
  for (; k < n; ++k) s[0] += x[k * incx] * y[k];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// Output elements per axpy chunk: the accumulators stay in L1 while the K rows stream by in
// long runs (256 measured 35% slower on a 4096² matrix).
constexpr int64_t kAxpyChunk = 2048;

// y[0, n) = alpha · Σ_k x[k·incx] · rows[k·ld + (0, n)] + beta · y, rows read contiguously,
// four at a time so each accumulator load/store serves four FMAs.
void axpy_rows(float* y, const float* x, int64_t incx, const float* rows, int64_t ld, int64_t K,
               int64_t n, float alpha, float beta) {
  for (int64_t j0 = 0; j0 < n; j0 += kAxpyChunk) {
    const int64_t w = std::min(kAxpyChunk, n - j0);
    float acc[kAxpyChunk] = {};
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const float x0 = x[k * incx], x1 = x[(k + 1) * incx];
      const float x2 = x[(k + 2) * incx], x3 = x[(k + 3) * incx];
      const float* r0 = rows + k * ld + j0;
      const float *r1 = r0 + ld, *r2 = r0 + 2 * ld, *r3 = r0 + 3 * ld;
      for (int64_t j = 0; j < w; ++j) acc[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j];
    }
    for (; k < K; ++k) {
      const float xk = x[k * incx];
      const float* r = rows + k * ld + j0;
      for (int64_t j = 0; j < w; ++j) acc[j] += xk * r[j];
    }
    for (int64_t j = 0; j < w; ++j)
      y[j0 + j] = beta == 0.0f ? alpha * acc[j] : alpha * acc[j] + beta * y[j0 + j];
  }
}

void gemv_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                int64_t ldc, bool threaded) {
  // Output elements, and how each is formed: a dot product with a contiguous row, or an axpy
  // over contiguous rows of the matrix.
  const int64_t n_out = M == 1 ? N : M;
  const bool by_dot = M == 1 ? trans_b : !trans_a;
  auto run = [&](int64_t j0, int64_t j1) {
    if (M == 1) {  // c[0, j] = Σ_k op(A)[0, k] · op(B)[k, j]
      const int64_t incx = trans_a ? lda : 1;
      if (by_dot) {
        for (int64_t j = j0; j < j1; ++j) {
          const float v = alpha * dot(A, incx, B + j * ldb, K);
          C[j] = beta == 0.0f ? v : v + beta * C[j];
        }
      } else {
        axpy_rows(C + j0, A, incx, B + j0, ldb, K, j1 - j0, alpha, beta);
      }
    } else {  // c[i, 0] = Σ_k op(A)[i, k] · op(B)[k, 0]; one c element per row, ldc apart
      const int64_t incb = trans_b ? 1 : ldb;
      if (by_dot) {
        for (int64_t i = j0; i < j1; ++i) {
          const float v = alpha * dot(B, incb, A + i * lda, K);
          C[i * ldc] = beta == 0.0f ? v : v + beta * C[i * ldc];
        }
      } else {
        float tmp[kAxpyChunk];
        for (int64_t i0 = j0; i0 < j1; i0 += kAxpyChunk) {
          const int64_t w = std::min(kAxpyChunk, j1 - i0);
          for (int64_t i = 0; i < w; ++i) tmp[i] = C[(i0 + i) * ldc];
          axpy_rows(tmp, B, incb, A + i0, lda, K, w, alpha, beta);
          for (int64_t i = 0; i < w; ++i) C[(i0 + i) * ldc] = tmp[i];
        }
      }
    }
  };
  if (threaded)
    parallel_for(n_out, by_dot ? 16 : 1024, run);
  else
    run(0, n_out);
}

// No packing, no scratch: what runs when the scratch cannot be allocated.
void unpacked_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                    int64_t ldc, bool threaded) {
  auto rows = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float* c = C + i * ldc;
      for (int64_t j = 0; j < N; ++j) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
      for (int64_t k = 0; k < K; ++k) {
        const float a = alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]);
        if (trans_b)
          for (int64_t j = 0; j < N; ++j) c[j] += a * B[j * ldb + k];
        else
          for (int64_t j = 0; j < N; ++j) c[j] += a * B[k * ldb + j];
      }
    }
  };
  if (threaded)
    parallel_for(M, 8, rows);
  else
    rows(0, M);
}

void sgemm_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                int64_t ldc, bool allow_threads) {
  if (M <= 0 || N <= 0) return;
  const double flops = 2.0 * static_cast<double>(M) * N * K;
  const bool gemv = M == 1 || N == 1;
  const bool threaded = allow_threads && ThreadPool::global().num_threads() > 1 &&
                        flops >= (gemv ? kParallelGemvFlops : kParallelFlops);
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  if (gemv) {
    gemv_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threaded);
    return;
  }
  if (!blocked_sgemm(active_kernel(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
                     ldc, threaded))
    unpacked_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threaded);
}

}  // namespace

void set_blocking_override(Blocking b) {
  g_mc = b.mc;
  g_kc = b.kc;
  g_nc = b.nc;
}

Blocking current_blocking() { return blocking_for(active_kernel()); }

const char* current_kernel_name() { return active_kernel().name; }

}  // namespace gemm

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm::sgemm_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, true);
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                   float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                   int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                   int64_t stride_c) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  auto one = [&](int64_t b, bool threads) {
    gemm::sgemm_impl(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb,
                     beta, C + b * stride_c, ldc, threads);
  };
  // Products too small to split (attention heads), or enough of them to go round the threads
  // several times: one product per task. Otherwise split each product in turn.
  const double flops = 2.0 * static_cast<double>(M) * N * K;
  const int threads = ThreadPool::global().num_threads();
  if (batch > 1 && (flops < gemm::kParallelFlops || batch >= 4 * threads)) {
    const auto grain = static_cast<int64_t>(std::ceil(gemm::kParallelFlops / (flops + 1.0)));
    parallel_for(batch, std::max<int64_t>(1, grain), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) one(b, false);
    });
    return;
  }
  for (int64_t b = 0; b < batch; ++b) one(b, true);
}

}  // namespace dalle

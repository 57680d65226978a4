// Kernel workshop for the CPU sgemm (native/kernels/matmul): first proves it right, then races it.
//
//   1. Validation: sgemm and sgemm_batched against sgemm_reference at odd sizes that are not
//      multiples of any tile, every transpose, padded leading dimensions, alpha/beta (beta = 0
//      with NaN in C must ignore C), the matrix-vector, row-split, multi-slice and batched
//      paths, serial and threaded, at every SIMD level the CPU has.
//   2. Timing: square f32 GEMM (C = A·B, row-major) at 256..2048 for ours and for OpenBLAS's
//      cblas_sgemm, loaded at run time with dlopen (never a build dependency), both on the same
//      number of threads; alternating rounds of back-to-back runs; best and median of N. Prints
//      a table and writes JSON (default benchmarks/results/gemm.json). An OpenBLAS that does
//      not know this CPU (it reports a pre-AVX core) is rerun with OPENBLAS_CORETYPE set.
//
// Usage: gemm_bench [--reps N] [--sizes 256,512,...] [--json PATH] [--levels] [--no-validate]
//                   [--tune]
//   --levels  also times the AVX2 kernel on an AVX-512 CPU
//   --tune    sweeps the cache blocking (mc, kc) of the active kernel at 1024 and 2048
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/threadpool.h"
#include "kernels/matmul/gemm.h"
#include "kernels/matmul/gemm_kernels.h"

#ifndef DALLE_SOURCE_DIR
#define DALLE_SOURCE_DIR "."
#endif

namespace {

using dalle::SimdLevel;
using ll = long long;  // for printf

// ---- OpenBLAS, found at run time ----------------------------------------------------------
constexpr int kCblasRowMajor = 101, kCblasNoTrans = 111;
using CblasSgemm = void (*)(int order, int trans_a, int trans_b, int M, int N, int K, float alpha,
                            const float* A, int lda, const float* B, int ldb, float beta, float* C,
                            int ldc);

struct OpenBlas {
  void* handle = nullptr;
  CblasSgemm sgemm = nullptr;
  std::string library, corename, config;

  bool load(int threads) {
    for (const char* name : {"libopenblas.so.0", "libopenblas.so"}) {
      handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (handle != nullptr) {
        library = name;
        break;
      }
    }
    if (handle == nullptr) return false;
    sgemm = reinterpret_cast<CblasSgemm>(dlsym(handle, "cblas_sgemm"));
    if (sgemm == nullptr) return false;
    if (auto set = reinterpret_cast<void (*)(int)>(dlsym(handle, "openblas_set_num_threads")))
      set(threads);
    if (auto core = reinterpret_cast<const char* (*)()>(dlsym(handle, "openblas_get_corename")))
      corename = core();
    if (auto cfg = reinterpret_cast<const char* (*)()>(dlsym(handle, "openblas_get_config")))
      config = cfg();
    return true;
  }

  void run(int64_t n, const float* A, const float* B, float* C) const {
    const int m = static_cast<int>(n);
    sgemm(kCblasRowMajor, kCblasNoTrans, kCblasNoTrans, m, m, m, 1.0f, A, m, B, m, 0.0f, C, m);
  }
};

// Whether OpenBLAS's chosen core uses the vector width this CPU has.
bool blas_core_fits(std::string core, SimdLevel level) {
  for (char& ch : core) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const std::vector<std::string> avx512 = {"skylakex", "cooperlake", "sapphirerapids"};
  const std::vector<std::string> avx2 = {"haswell", "zen", "skylakex", "cooperlake",
                                         "sapphirerapids"};
  if (level == SimdLevel::kScalar) return true;
  const auto& ok = level == SimdLevel::kAvx512 ? avx512 : avx2;
  return std::find(ok.begin(), ok.end(), core) != ok.end();
}

// ---- validation ---------------------------------------------------------------------------
std::vector<float> random_vec(std::mt19937& gen, size_t n) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

struct Case {
  int64_t M, N, K;
  bool ta, tb;
  float alpha, beta;
  int64_t pad;  // extra leading-dimension elements on A, B and C
};

// Compares ours against the reference on one case; prints and returns false on a mismatch.
bool check_case(const Case& c, uint32_t seed, int64_t batch, bool shared_b) {
  std::mt19937 gen(seed);
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
  const int64_t sa = a_rows * lda, sb = shared_b ? 0 : b_rows * ldb, sc = c.M * ldc;
  const int64_t b_count = shared_b ? 1 : batch;
  std::vector<float> A = random_vec(gen, static_cast<size_t>(sa * batch));
  std::vector<float> B = random_vec(gen, static_cast<size_t>(b_rows * ldb * b_count));
  std::vector<float> C0 = random_vec(gen, static_cast<size_t>(sc * batch));
  // beta = 0 must not read C: poison it (the padding too, which must come back untouched).
  if (c.beta == 0.0f)
    for (size_t i = 0; i < C0.size(); i += 3) C0[i] = std::nanf("");
  std::vector<float> ours = C0, ref = C0;
  if (batch == 1)
    dalle::sgemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta,
                 ours.data(), ldc);
  else
    dalle::sgemm_batched(c.ta, c.tb, batch, c.M, c.N, c.K, c.alpha, A.data(), lda, sa, B.data(),
                         ldb, sb, c.beta, ours.data(), ldc, sc);
  for (int64_t b = 0; b < batch; ++b)
    dalle::sgemm_reference(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data() + b * sa, lda,
                           B.data() + b * sb, ldb, c.beta, ref.data() + b * sc, ldc);
  // f32 accumulation over K terms of size <= 1 against a double reference.
  const double tol = 1e-6 * static_cast<double>(c.K) * (std::fabs(c.alpha) + 1.0) + 1e-5;
  for (size_t i = 0; i < ours.size(); ++i) {
    const bool inside = static_cast<int64_t>(i % static_cast<size_t>(ldc)) < c.N;
    const bool ok = inside ? std::fabs(ours[i] - ref[i]) <= tol
                           : (ours[i] == C0[i] || (std::isnan(ours[i]) && std::isnan(C0[i])));
    if (!ok) {
      std::printf("  MISMATCH %s: M=%lld N=%lld K=%lld ta=%d tb=%d alpha=%g beta=%g pad=%lld "
                  "batch=%lld%s seed=%u at %zu: ours %.7g ref %.7g\n",
                  dalle::gemm::current_kernel_name(), ll(c.M), ll(c.N), ll(c.K), c.ta, c.tb,
                  c.alpha, c.beta, ll(c.pad), ll(batch), shared_b ? " shared-b" : "", seed, i,
                  ours[i], ref[i]);
      return false;
    }
  }
  return true;
}

bool validate(SimdLevel best) {
  const int64_t sizes[][3] = {{1, 1, 1},     {3, 7, 17},   {17, 33, 7},   {7, 1, 65},
                              {1, 131, 33},  {65, 17, 131}, {33, 65, 3},  {131, 3, 1},
                              {15, 33, 300}, {29, 47, 1},   {97, 131, 65}, {300, 301, 299}};
  const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {-0.5f, 0.25f}, {2.0f, 0.0f}};
  // Shapes that take the other paths: matrix-vector (M or N = 1, threaded), few column panels
  // (rows split across threads), several column, row and depth slices (double buffering).
  const Case paths[] = {{1, 2999, 1500, false, false, 1.0f, 0.0f, 0},
                        {1, 2999, 1500, true, true, 0.5f, -1.0f, 7},
                        {2999, 1, 1500, false, true, 1.0f, 0.0f, 0},
                        {2999, 1, 1500, true, false, 2.0f, 0.5f, 3},
                        {2000, 60, 300, false, false, 1.0f, 0.0f, 0},
                        {2100, 40, 600, true, true, 1.0f, 1.0f, 1},
                        {2100, 200, 100, true, false, 1.0f, 0.0f, 0},
                        {150, 2100, 1100, false, true, -1.0f, 0.5f, 2}};
  // Batched: small products (parallel over the batch) and large ones (parallel inside).
  const Case batched[] = {{17, 33, 65, false, false, 1.0f, 0.0f, 0},
                          {33, 7, 17, true, true, 0.5f, 1.0f, 3},
                          {131, 129, 97, false, true, 1.0f, 0.0f, 0},
                          {70, 300, 65, true, false, -1.0f, 0.5f, 0},
                          {300, 301, 299, true, false, 1.0f, 0.0f, 0}};
  bool all_ok = true;
  uint32_t seed = 1;
  for (int level = 0; level <= static_cast<int>(best); ++level) {
    dalle::set_simd_level_override(level);
    int cases = 0, failed = 0;
    auto check = [&](const Case& c, int64_t batch, bool shared) {
      ++cases;
      if (!check_case(c, seed++, batch, shared)) ++failed;
    };
    for (const auto& s : sizes)
      for (int t = 0; t < 4; ++t)
        for (const auto& p : ab)
          check({s[0], s[1], s[2], (t & 1) != 0, (t & 2) != 0, p[0], p[1], seed % 3 ? 0 : 5}, 1,
                false);
    for (const Case& c : paths) check(c, 1, false);
    for (const Case& c : batched)
      for (bool shared : {false, true}) check(c, c.M >= 300 ? 2 : 5, shared);
    std::printf("validate %-12s (%s): %d cases, %d failed\n",
                dalle::simd_level_name(static_cast<SimdLevel>(level)),
                dalle::gemm::current_kernel_name(), cases, failed);
    all_ok = all_ok && failed == 0;
  }
  dalle::set_simd_level_override(-1);
  return all_ok;
}

// ---- timing -------------------------------------------------------------------------------
struct Timing {
  double best_s = 1e30, median_s = 0;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename F>
double time_once(F&& f) {
  const double t0 = now_s();
  f();
  return now_s() - t0;
}

// Untimed runs for 200 ms: the steady state of a training loop. It also outlasts the ~0.1 s
// that OpenBLAS's idle workers spin after a call (THREAD_TIMEOUT), which would otherwise steal
// a core from ours, and brings both pools' workers out of deep idle (on the VM this was tuned
// on, a worker idle for a while takes milliseconds to come back).
template <typename F>
void warm(F&& f) {
  const double until = now_s() + 0.2;
  do f();
  while (now_s() < until);
}

Timing summarize(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  Timing r;
  r.best_s = t.front();
  r.median_s = t[t.size() / 2];
  return r;
}

double gflops(int64_t n, double s) { return 2.0 * n * n * n / s * 1e-9; }

struct Row {
  int64_t n;
  Timing ours, blas, avx2;
  bool has_blas = false, has_avx2 = false;
};

int reps_for(int64_t n, int reps) {
  if (reps > 0) return reps;
  return n <= 512 ? 21 : (n <= 1024 ? 11 : 7);
}

// Rounds of ours then OpenBLAS, each block warmed up first; alternating spreads background
// load over both.
Row time_size(int64_t n, int reps, const OpenBlas* blas, bool avx2, std::mt19937& gen) {
  std::vector<float> A = random_vec(gen, n * n), B = random_vec(gen, n * n), C(n * n), Cb(n * n);
  auto ours = [&] {
    dalle::sgemm(false, false, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
  };
  auto theirs = [&] { blas->run(n, A.data(), B.data(), Cb.data()); };
  Row row;
  row.n = n;
  row.has_blas = blas != nullptr;
  constexpr int kRounds = 3;
  const int per_round = std::max(1, (reps_for(n, reps) + kRounds - 1) / kRounds);
  std::vector<double> t_ours, t_blas;
  for (int round = 0; round < kRounds; ++round) {
    warm(ours);
    for (int r = 0; r < per_round; ++r) t_ours.push_back(time_once(ours));
    if (blas != nullptr) {
      warm(theirs);
      for (int r = 0; r < per_round; ++r) t_blas.push_back(time_once(theirs));
    }
  }
  row.ours = summarize(t_ours);
  if (blas != nullptr) {
    row.blas = summarize(t_blas);
    double worst = 0;
    for (int64_t i = 0; i < n * n; ++i)
      worst = std::max(worst, static_cast<double>(std::fabs(C[i] - Cb[i])));
    if (worst > 1e-6 * n + 1e-4)
      std::printf("  warning: ours and OpenBLAS differ by %g at n=%lld\n", worst, ll(n));
  }
  if (avx2) {
    dalle::set_simd_level_override(static_cast<int>(SimdLevel::kAvx2Fma));
    warm(ours);
    std::vector<double> t;
    for (int r = 0; r < std::max(3, reps_for(n, reps) / 2); ++r) t.push_back(time_once(ours));
    row.avx2 = summarize(t);
    row.has_avx2 = true;
    dalle::set_simd_level_override(-1);
  }
  return row;
}

void tune_blocking(std::mt19937& gen) {
  const dalle::gemm::Blocking def = dalle::gemm::current_blocking();
  std::printf("tuning %s (default mc=%lld kc=%lld nc=%lld)\n", dalle::gemm::current_kernel_name(),
              ll(def.mc), ll(def.kc), ll(def.nc));
  for (int64_t n : {1024, 2048}) {
    std::vector<float> A = random_vec(gen, n * n), B = random_vec(gen, n * n), C(n * n);
    auto run = [&] {
      dalle::sgemm(false, false, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
    };
    for (int64_t kc : {256, 384, 512, 768})
      for (int64_t mc : {112, 168, 224, 336, 448}) {
        dalle::gemm::set_blocking_override({mc, kc, 0});
        run();
        std::vector<double> t;
        for (int r = 0; r < 5; ++r) t.push_back(time_once(run));
        const dalle::gemm::Blocking b = dalle::gemm::current_blocking();
        const Timing tm = summarize(t);
        std::printf("  n=%lld mc=%lld kc=%lld: best %.1f median %.1f GFLOP/s\n", ll(n), ll(b.mc),
                    ll(b.kc), gflops(n, tm.best_s), gflops(n, tm.median_s));
      }
  }
  dalle::gemm::set_blocking_override({});
}

std::string cpu_model() {
  FILE* f = std::fopen("/proc/cpuinfo", "r");
  if (f == nullptr) return "unknown";
  char line[512];
  std::string model = "unknown";
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::strncmp(line, "model name", 10) == 0) {
      const char* colon = std::strchr(line, ':');
      if (colon != nullptr) model = colon + 2;
      if (!model.empty() && model.back() == '\n') model.pop_back();
      break;
    }
  std::fclose(f);
  return model;
}

// GFLOP/s per size; ratios are ours / OpenBLAS GFLOP/s on the best and on the median times.
bool write_json(const std::string& path, const std::vector<Row>& rows, const OpenBlas* blas,
                int threads) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const dalle::gemm::Blocking bl = dalle::gemm::current_blocking();
  std::fprintf(f, "{\n  \"benchmark\": \"sgemm, square, row-major, C = A*B\",\n");
  std::fprintf(f, "  \"cpu\": \"%s\",\n  \"date\": %lld,\n", cpu_model().c_str(),
               ll(std::time(nullptr)));
  std::fprintf(f, "  \"simd_level\": \"%s\",\n  \"kernel\": \"%s\",\n  \"threads\": %d,\n",
               dalle::simd_level_name(dalle::cpu_simd_level()),
               dalle::gemm::current_kernel_name(), threads);
  std::fprintf(f, "  \"blocking\": {\"mc\": %lld, \"kc\": %lld, \"nc\": %lld},\n", ll(bl.mc),
               ll(bl.kc), ll(bl.nc));
  if (blas != nullptr)
    std::fprintf(f,
                 "  \"openblas\": {\"library\": \"%s\", \"core\": \"%s\", \"config\": \"%s\"},\n",
                 blas->library.c_str(), blas->corename.c_str(), blas->config.c_str());
  else
    std::fprintf(f, "  \"openblas\": null,\n");
  std::fprintf(f, "  \"results\": [\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::fprintf(f, "    {\"n\": %lld, \"ours_gflops_best\": %.2f, \"ours_gflops_median\": %.2f",
                 ll(r.n), gflops(r.n, r.ours.best_s), gflops(r.n, r.ours.median_s));
    if (r.has_blas)
      std::fprintf(f,
                   ", \"openblas_gflops_best\": %.2f, \"openblas_gflops_median\": %.2f, "
                   "\"ratio_best\": %.3f, \"ratio_median\": %.3f",
                   gflops(r.n, r.blas.best_s), gflops(r.n, r.blas.median_s),
                   r.blas.best_s / r.ours.best_s, r.blas.median_s / r.ours.median_s);
    if (r.has_avx2) std::fprintf(f, ", \"avx2_gflops_best\": %.2f", gflops(r.n, r.avx2.best_s));
    std::fprintf(f, "}%s\n", i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 0;
  bool do_validate = true, levels = false, tune = false;
  std::vector<int64_t> sizes = {256, 512, 768, 1024, 1536, 2048};
  std::string json_path = std::string(DALLE_SOURCE_DIR) + "/benchmarks/results/gemm.json";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();  // argv stays intact: it may be passed to execv below
      for (const char* p = argv[++i]; *p != '\0'; p += *p == ',' ? 1 : 0) {
        char* end = nullptr;
        const int64_t n = std::strtoll(p, &end, 10);
        if (end == p || n <= 0) break;
        sizes.push_back(n);
        p = end;
      }
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--no-validate") {
      do_validate = false;
    } else if (a == "--levels") {
      levels = true;
    } else if (a == "--tune") {
      tune = true;
    } else {
      std::fprintf(stderr, "unknown argument %s (see the header of gemm_bench.cpp)\n", a.c_str());
      return 2;
    }
  }

  const SimdLevel best = dalle::cpu_simd_level();
  const int threads = dalle::ThreadPool::global().num_threads();
  OpenBlas blas;
  const bool have_blas = blas.load(threads);
  // An OpenBLAS older than the CPU (0.3.21 on Sapphire/Emerald Rapids) falls back to a generic
  // SSE3 core and would make a straw man: rerun with the newest core it has for this ISA,
  // unless the user chose one.
  if (have_blas && std::getenv("OPENBLAS_CORETYPE") == nullptr &&
      !blas_core_fits(blas.corename, best)) {
    const char* core = best == SimdLevel::kAvx512 ? "SkylakeX" : "Haswell";
    std::printf("OpenBLAS picked core %s for this %s CPU; rerunning with OPENBLAS_CORETYPE=%s\n",
                blas.corename.c_str(), dalle::simd_level_name(best), core);
    std::fflush(stdout);
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv("/proc/self/exe", argv);
    std::printf("re-exec failed; continuing with core %s\n", blas.corename.c_str());
  }
  std::printf("sgemm kernel workshop: CPU level %s, kernel %s, %d threads\n",
              dalle::simd_level_name(best), dalle::gemm::current_kernel_name(), threads);
  if (have_blas)
    std::printf("OpenBLAS: %s (core %s; %s), %d threads\n", blas.library.c_str(),
                blas.corename.c_str(), blas.config.c_str(), threads);
  else
    std::printf("OpenBLAS not found (libopenblas.so.0 / libopenblas.so): reporting ours alone.\n"
                "  To compare, install it: apt-get install libopenblas0-pthread"
                "  (or libopenblas-dev)\n");

  if (do_validate && !validate(best)) {
    std::printf("VALIDATION FAILED\n");
    return 1;
  }

  std::mt19937 gen(42);
  if (tune) tune_blocking(gen);

  const bool avx2 = levels && best == SimdLevel::kAvx512;
  std::printf("\n%6s %12s %12s %12s %12s %8s %8s%s\n", "size", "ours best", "ours median",
              "BLAS best", "BLAS median", "ratio", "(median)", avx2 ? "   avx2 best" : "");
  std::vector<Row> rows;
  for (int64_t n : sizes) {
    const Row row = time_size(n, reps, have_blas ? &blas : nullptr, avx2, gen);
    std::printf("%6lld %12.1f %12.1f ", ll(n), gflops(n, row.ours.best_s),
                gflops(n, row.ours.median_s));
    if (have_blas)
      std::printf("%12.1f %12.1f %7.0f%% %7.0f%%", gflops(n, row.blas.best_s),
                  gflops(n, row.blas.median_s), 100.0 * row.blas.best_s / row.ours.best_s,
                  100.0 * row.blas.median_s / row.ours.median_s);
    else
      std::printf("%12s %12s %8s %8s", "-", "-", "-", "-");
    if (row.has_avx2) std::printf(" %12.1f", gflops(n, row.avx2.best_s));
    std::printf("\n");
    std::fflush(stdout);
    rows.push_back(row);
  }
  if (!write_json(json_path, rows, have_blas ? &blas : nullptr, threads)) {
    std::printf("could not write %s\n", json_path.c_str());
    return 1;
  }
  std::printf("\nwrote %s\n", json_path.c_str());
  return 0;
}

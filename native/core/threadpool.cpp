#include "threadpool.h"

#include "fp_mode.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace dalle {

namespace {
thread_local bool t_inside_pool = false;

// Waking a sleeping thread costs 20-200 us on a VM, more than a 256^3 GEMM takes, so workers
// and the caller spin this long before sleeping. Bounded, so an idle pool costs nothing.
constexpr auto kSpin = std::chrono::microseconds(100);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

template <typename Pred>
bool spin_until(Pred done) {
  auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    // Reading the clock every iteration would dominate the spin; every 64th is plenty.
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
    cpu_relax();
  }
}
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < num_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

// DALLE_NUM_THREADS caps the pool (several processes sharing a machine, or a container whose CPU quota is below its
// visible core count); anything but a positive integer means every core.
static int threads_from_env() {
  const char* v = std::getenv("DALLE_NUM_THREADS");
  if (v == nullptr) return 0;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return (end != v && *end == '\0' && n > 0 && n <= 4096) ? static_cast<int>(n) : 0;
}

ThreadPool& ThreadPool::global() {
  // Never destroyed: workers must outlive any static destructor that might still run a kernel.
  static ThreadPool* pool = new ThreadPool(threads_from_env());
  return *pool;
}

void ThreadPool::run_chunks() {
  for (;;) {
    int64_t c = next_chunk_.fetch_add(1);
    if (c >= num_chunks_) break;
    int64_t begin = c * chunk_;
    int64_t end = std::min(n_, begin + chunk_);
    (*fn_)(begin, end);
    chunks_done_.fetch_add(1);
  }
}

void ThreadPool::worker_loop() {
  t_inside_pool = true;
  FlushDenormals::enable_for_this_thread();
  uint64_t seen = 0;
  for (;;) {
    spin_until([&] { return stop_.load(std::memory_order_relaxed) || generation_.load(std::memory_order_acquire) != seen; });
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      // fn_ is cleared under mu_ once a job is over, so a worker that wakes late skips it
      // instead of joining the next job with stale parameters.
      if (fn_ == nullptr) continue;
      ++active_workers_;
    }
    run_chunks();
    {
      std::lock_guard<std::mutex> lock(mu_);
      --active_workers_;
    }
    done_.notify_all();
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int threads = num_threads();
  if (t_inside_pool || threads == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> job(job_mutex_, std::try_to_lock);
  if (!job.owns_lock()) {
    fn(0, n);
    return;
  }
  // A few chunks per thread balances uneven work without much counter traffic.
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, int64_t{threads} * 4);
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    chunk_ = (n + chunks - 1) / chunks;
    num_chunks_ = (n + chunk_ - 1) / chunk_;
    next_chunk_ = 0;
    chunks_done_ = 0;
    ++generation_;
  }
  wake_.notify_all();
  t_inside_pool = true;
  run_chunks();
  t_inside_pool = false;
  auto finished = [&] { return chunks_done_.load() == num_chunks_ && active_workers_.load() == 0; };
  spin_until(finished);
  // Re-checked under mu_: workers join a job under it, so only there is "no worker active" final.
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, finished);
  fn_ = nullptr;
}

}  // namespace dalle

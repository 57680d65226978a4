// ThreadPool: persistent workers, one per hardware thread, the calling thread included.
// parallel_for splits [0, n) into chunks handed out by an atomic counter. A call made from inside
// a worker, or while another job holds the pool (two async ops at once), runs inline instead of
// waiting, so the pool can never deadlock.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dalle {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads = 0);  // 0: std::thread::hardware_concurrency()
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // fn(begin, end) over chunks of at least `grain` items; blocks until all chunks are done.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool used by kernels.
  static ThreadPool& global();

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex job_mutex_;  // one job at a time
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 1, num_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int64_t> chunks_done_{0};
  // Written under mu_; atomic so spinning threads may read them without it.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> active_workers_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace dalle

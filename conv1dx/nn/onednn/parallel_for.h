// Runs a handler's chunks of work on the calling thread and XLA's intra-op pool (`ffi::ThreadPool`).
//
// `ParallelFor(pool, count, run)` calls run(0) ... run(count - 1), each once, on this thread and on up to
// count - 1 pool tasks, and returns once every chunk has run, with the first error message ("" if none).
// Chunks are claimed from a counter, so the caller finishes alone when the pool is busy (no deadlock),
// and a task that starts after every chunk is claimed finds nothing to do.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "xla/ffi/api/ffi.h"

namespace conv1dx {

// The work of one call, shared with the pool's tasks; a task that starts after every chunk is claimed
// only reads `next`, so the state outlives the call through shared ownership.
struct Chunks {
  int64_t count = 0;
  std::function<void(int64_t)> run;
  std::atomic<int64_t> next{0};
  std::mutex mutex;
  std::condition_variable all_done;
  int64_t done = 0;
  std::string error;
};

inline void Drain(Chunks& chunks) {
  for (int64_t i = chunks.next.fetch_add(1); i < chunks.count; i = chunks.next.fetch_add(1)) {
    std::string error;
    try {
      chunks.run(i);
    } catch (const std::exception& e) {
      error = std::string("conv1dx handler failed: ") + e.what();
    } catch (...) {
      error = "conv1dx handler failed with an unknown exception";
    }
    std::lock_guard<std::mutex> lock(chunks.mutex);
    if (chunks.error.empty()) chunks.error = error;
    if (++chunks.done == chunks.count) chunks.all_done.notify_all();
  }
}

// Runs run(0) ... run(count - 1) on this thread and the pool's; returns the first error ("" if none).
// Returns only once every chunk has run, whatever fails, so no task touches the caller's state later.
inline std::string ParallelFor(xla::ffi::ThreadPool& pool, int64_t count, std::function<void(int64_t)> run) {
  auto chunks = std::make_shared<Chunks>();
  chunks->count = count;
  chunks->run = std::move(run);
  try {
    for (int64_t i = 1; i < count; ++i) pool.Schedule([chunks] { Drain(*chunks); });
  } catch (...) {
    // Out of memory for a task: this thread runs the chunks nobody claimed.
  }
  Drain(*chunks);
  std::unique_lock<std::mutex> lock(chunks->mutex);
  chunks->all_done.wait(lock, [&] { return chunks->done == chunks->count; });
  return chunks->error;
}

}  // namespace conv1dx

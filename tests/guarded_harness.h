// What the guarded harnesses share (tests/kernel_gradient_guarded.cc, tests/correlate_guarded.cc): memory
// placed against unreadable pages, so a read or write past either end stops the process with SIGSEGV, and a
// runner of a handler's work chunks on threads of its own.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace guarded {

// A mapping of `length` bytes from `base`, which holds a PROT_NONE page at each end.
struct Mapping {
  char* base;
  size_t length;
};

// `bytes` bytes placed against a PROT_NONE page: ending right before one (`at_end`), else starting right after
// one. `*mapping` receives the whole mapping, for munmap.
inline char* Map(size_t bytes, bool at_end, Mapping* mapping) {
  const size_t page = sysconf(_SC_PAGESIZE), span = (std::max<size_t>(bytes, 1) + page - 1) / page * page;
  char* base = static_cast<char*>(
      mmap(nullptr, span + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED) std::abort();
  mprotect(base, page, PROT_NONE);
  mprotect(base + page + span, page, PROT_NONE);
  *mapping = {base, span + 2 * page};
  return at_end ? base + page + span - bytes : base + page;
}

// Runs run(0) ... run(count - 1), each on a new thread (stand-in for XLA's pool, whose `ParallelFor` needs an
// `ffi::ThreadPool`); a new thread per chunk also starts any thread-local state of the handler afresh.
inline std::string Threads(int64_t count, std::function<void(int64_t)> run) {
  std::vector<std::thread> threads;
  for (int64_t i = 0; i < count; ++i) threads.emplace_back(run, i);
  for (auto& thread : threads) thread.join();
  return "";
}

}  // namespace guarded

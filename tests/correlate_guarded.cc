// Runs the direct correlation's loops (conv1dx/nn/onednn/correlate.cc) on src, weights and out that start
// right after and end right before unreadable pages, on random geometries, against a float64 reference.
// A read outside src or weights (a gather lane not masked where it must be, a tap outside [0, K)) or a
// write outside out (a lane of a partial block scattered anyway) stops the process with SIGSEGV; so does
// a read or write outside a work chunk's scratch, which is placed the same way (its std::aligned_alloc
// and std::free are redirected below, and a size that is not a multiple of the alignment aborts). out
// starts as NaN, so an element no tile writes fails too; a wrong sum prints MISMATCH and exits 1.
// Built and run by tests/test_nn_correlate_guarded.py.
//
//   correlate_guarded SEED COUNT   -> prints "checked <geometries>"

// Everything correlate.cc includes, first, so that the two macros below reach only its own code.
#include <immintrin.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../conv1dx/nn/onednn/parallel_for.h"
#include "guarded_harness.h"
#include "xla/ffi/api/ffi.h"

namespace {

// The scratch of correlate.cc's work chunks, guarded like the operands (placement chosen per geometry).
std::atomic<bool> scratch_at_end{false};
std::mutex scratch_mutex;
std::map<void*, guarded::Mapping> scratch_mappings;

void* GuardedAlignedAlloc(size_t alignment, size_t bytes) {
  if (bytes % alignment != 0) {
    std::printf("MISALIGNED aligned_alloc(%zu, %zu): the size is not a multiple of the alignment\n", alignment,
                bytes);
    std::fflush(stdout);
    std::abort();
  }
  guarded::Mapping mapping;
  char* p = guarded::Map(bytes, scratch_at_end.load(), &mapping);
  std::lock_guard<std::mutex> lock(scratch_mutex);
  scratch_mappings[p] = mapping;
  return p;
}

void GuardedFree(void* p) {
  if (p == nullptr) return;
  guarded::Mapping mapping;
  {
    std::lock_guard<std::mutex> lock(scratch_mutex);
    auto found = scratch_mappings.find(p);
    if (found == scratch_mappings.end()) std::abort();
    mapping = found->second;
    scratch_mappings.erase(found);
  }
  munmap(mapping.base, mapping.length);
}

}  // namespace

namespace std {
using ::GuardedAlignedAlloc;
using ::GuardedFree;
}  // namespace std

#define aligned_alloc(alignment, bytes) GuardedAlignedAlloc(alignment, bytes)
#define free(p) GuardedFree(p)
#include "../conv1dx/nn/onednn/correlate.cc"
#undef aligned_alloc
#undef free

namespace {

// n floats placed against a PROT_NONE page, unmapped when this goes out of scope.
class Guarded {
 public:
  Guarded(int64_t n, bool at_end) : data_(reinterpret_cast<float*>(guarded::Map(n * sizeof(float), at_end, &mapping_))) {}
  ~Guarded() { munmap(mapping_.base, mapping_.length); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  float* get() const { return data_; }

 private:
  guarded::Mapping mapping_;
  float* data_;
};

}  // namespace

int main(int argc, char** argv) {
  std::mt19937_64 rng(argc > 1 ? std::atoll(argv[1]) : 0);
  const int count = argc > 2 ? std::atoi(argv[2]) : 300;
  auto uniform = [&](int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng() % uint64_t(hi - lo + 1)); };
  std::normal_distribution<float> normal;
  int checked = 0;
  while (checked < count) {
    Geometry g{};
    g.B = uniform(1, 40);  // partial 16-lane blocks, whole ones (16, 32) and several blocks
    g.S = uniform(1, 30);
    g.I = uniform(1, 20);
    g.N = uniform(1, 33);  // one to three channel tiles, the last one narrow or not
    g.K = uniform(1, 7);
    g.dilation = uniform(1, 3);
    g.T = uniform(1, 40);
    // Mostly leads around the kernel's span (windows that cross either end of src); some far enough that
    // every window of a tile, or of the whole output, reads only the zeros before or after src.
    const int64_t span = (g.K - 1) * g.dilation;
    g.lead = rng() % 4 ? uniform(-g.S - 2, span + 3) : uniform(-(g.S + g.T + 3), span + g.T + 3);
    // Every combination of placements: bit 0 src, bit 1 weights, bit 2 out, bit 3 the scratch at the end.
    const unsigned placement = checked % 16;
    scratch_at_end = placement & 8;
    Guarded src(g.B * g.S * g.I, placement & 1), weights(g.K * g.I * g.N, placement & 2),
        out(g.B * g.T * g.N, placement & 4);
    for (int64_t i = 0; i < g.B * g.S * g.I; ++i) src.get()[i] = normal(rng);
    for (int64_t i = 0; i < g.K * g.I * g.N; ++i) weights.get()[i] = normal(rng);
    std::fill(out.get(), out.get() + g.B * g.T * g.N, std::numeric_limits<float>::quiet_NaN());
    const std::string error = ComputeCorrelation(src.get(), weights.get(), out.get(), g, 1 + rng() % 4, guarded::Threads);
    if (!error.empty()) {
      std::printf("ERROR %s\n", error.c_str());
      return 1;
    }
    for (int64_t b = 0; b < g.B; ++b) {
      for (int64_t t = 0; t < g.T; ++t) {
        for (int64_t n = 0; n < g.N; ++n) {
          double sum = 0;
          for (int64_t k = 0; k < g.K; ++k) {
            const int64_t s = t - g.lead + k * g.dilation;
            if (s < 0 || s >= g.S) continue;
            for (int64_t i = 0; i < g.I; ++i) {
              sum += double(src.get()[(b * g.S + s) * g.I + i]) * weights.get()[(k * g.I + i) * g.N + n];
            }
          }
          const float got = out.get()[(b * g.T + t) * g.N + n];
          // Written as "not within" so that a NaN (an element never written) fails too.
          if (!(std::fabs(sum - got) <= 1e-4 * (1 + std::sqrt(double(g.K * g.I))))) {
            std::printf("MISMATCH B%ld S%ld I%ld N%ld K%ld T%ld lead %ld dilation %ld at b%ld t%ld n%ld: %g, want %g\n",
                        long(g.B), long(g.S), long(g.I), long(g.N), long(g.K), long(g.T), long(g.lead),
                        long(g.dilation), long(b), long(t), long(n), double(got), sum);
            return 1;
          }
        }
      }
    }
    ++checked;
  }
  std::printf("checked %d\n", checked);
  return 0;
}

// Runs the direct kernel gradient's loops (conv1dx/nn/onednn/kernel_gradient.cc) on x and dy that start
// right after and end right before unreadable pages, on random geometries, against a float64 reference.
// A read outside x or dy (a load not masked where it must be) stops the process with SIGSEGV; a wrong
// sum prints MISMATCH and exits 1. Built and run by tests/test_nn_kernel_gradient_direct.py.
//
//   kernel_gradient_guarded SEED COUNT   -> prints "checked <geometries>"
#include "../conv1dx/nn/onednn/kernel_gradient.cc"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "guarded_harness.h"

namespace {

// n floats placed against a PROT_NONE page: ending right before one (`at_end`), else starting right
// after one. The pages are never unmapped (the process is short-lived).
float* Guarded(int64_t n, bool at_end) {
  guarded::Mapping mapping;
  return reinterpret_cast<float*>(guarded::Map(n * sizeof(float), at_end, &mapping));
}

}  // namespace

int main(int argc, char** argv) {
  std::mt19937_64 rng(argc > 1 ? std::atoll(argv[1]) : 0);
  const int count = argc > 2 ? std::atoi(argv[2]) : 300;
  auto pick = [&](std::initializer_list<int64_t> values) { return values.begin()[rng() % values.size()]; };
  std::normal_distribution<float> normal;
  int checked = 0;
  while (checked < count) {
    Geometry g{};
    g.K = pick({1, 2, 3, 5, 7, 10, 33});
    g.C = pick({1, 3, 15, 16, 17, 31, 32, 33, 100});
    g.F = pick({1, 2, 13, 14, 15, 29, 43, 100});
    g.stride = pick({1, 1, 2, 3, 7});
    g.dilation = pick({1, 1, 2, 3});
    g.T = 1 + static_cast<int64_t>(rng() % 80);
    g.pad_left = pick({0, 0, 1, 4, g.K * g.dilation, 40});
    const int64_t pad_right = pick({0, 0, 1, 4, g.K * g.dilation, 40});
    g.B = pick({1, 2, 3, 9, 40});
    g.O = OutputLength(g.T, g.K, g.stride, g.pad_left, pad_right, g.dilation);
    if (g.O == 0 || g.B * g.O * g.K * g.C * g.F > 4e7) continue;
    const bool x_at_end = rng() & 1;
    float* x = Guarded(g.B * g.T * g.C, x_at_end);
    float* dy = Guarded(g.B * g.O * g.F, !x_at_end);
    for (int64_t i = 0; i < g.B * g.T * g.C; ++i) x[i] = normal(rng);
    for (int64_t i = 0; i < g.B * g.O * g.F; ++i) dy[i] = normal(rng);
    std::vector<float> out(g.K * g.C * g.F);
    const std::string error = ComputeKernelGradient(x, dy, out.data(), g, 1 + rng() % 4, guarded::Threads);
    if (!error.empty()) {
      std::printf("ERROR %s\n", error.c_str());
      return 1;
    }
    for (int64_t k = 0; k < g.K; ++k) {
      for (int64_t c = 0; c < g.C; ++c) {
        for (int64_t f = 0; f < g.F; ++f) {
          double sum = 0;
          for (int64_t b = 0; b < g.B; ++b) {
            for (int64_t o = 0; o < g.O; ++o) {
              const int64_t t = o * g.stride + k * g.dilation - g.pad_left;
              if (t >= 0 && t < g.T) sum += double(x[(b * g.T + t) * g.C + c]) * dy[(b * g.O + o) * g.F + f];
            }
          }
          if (std::fabs(sum - out[(k * g.C + c) * g.F + f]) > 1e-4 * (1 + std::sqrt(double(g.B * g.O)))) {
            std::printf("MISMATCH B%ld T%ld C%ld F%ld K%ld stride %ld dilation %ld pads %ld,%ld at k%ld c%ld f%ld\n",
                        long(g.B), long(g.T), long(g.C), long(g.F), long(g.K), long(g.stride), long(g.dilation),
                        long(g.pad_left), long(pad_right), long(k), long(c), long(f));
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

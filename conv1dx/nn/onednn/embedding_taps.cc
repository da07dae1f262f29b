// The gathers and scatter-adds of conv1dx.nn.embedding_conv as XLA FFI handlers (plain C++, float32).
//
// A convolution of embedded token ids is computed from projected[k] = table @ kernel[k] (K x R x F, R
// table rows) and rows[k, b, o], the row tap k reads at output step o of sequence b (K x B x O, int32):
//
//   conv1dx_embedding_taps_sum      projected, rows -> y (B, O, F)       y[b,o,:] = sum_k projected[k, rows[k,b,o], :]
//   conv1dx_embedding_taps_scatter  dy, rows -> d_projected (K, R, F)    d_projected[k, r, :] = sum of dy[b,o,:]
//                                                                         over the (b, o) with rows[k,b,o] == r
//
// XLA on CPU runs the same as K gathers and K scatter-adds, one pass over the output each, the scatters on
// one thread. Here the sum reads the K rows of each output step and writes it once, split by output steps
// across XLA's intra-op pool; the scatter gives each tap to one thread (taps claimed from a counter), which
// adds the output steps in order: the same bits on every call. A row outside [0, R) is an error.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "parallel_for.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using F32 = ffi::Buffer<ffi::F32>;
using S32 = ffi::Buffer<ffi::S32>;
using F32Result = ffi::ResultBuffer<ffi::F32>;

std::string OutOfRange(int64_t row, int64_t rows) {
  return "conv1dx embedding taps: row " + std::to_string(row) + " outside [0, " + std::to_string(rows) + ")";
}

ffi::Error TapsSum(ffi::ThreadPool pool, F32 projected, S32 rows, F32Result y) {
  const auto pd = projected.dimensions(), rd = rows.dimensions();
  if (pd.size() != 3 || rd.size() != 3 || pd[0] != rd[0]) {
    return ffi::Error::InvalidArgument("conv1dx embedding taps: projected (K, R, F) and rows (K, B, O) expected");
  }
  const int64_t K = pd[0], R = pd[1], F = pd[2], N = rd[1] * rd[2];
  const float* table = projected.typed_data();
  const int32_t* index = rows.typed_data();
  float* out = y->typed_data();
  if (N == 0 || F == 0) return ffi::Error::Success();
  const int64_t count = std::clamp<int64_t>(pool.num_threads(), 1, N);
  auto run = [&](int64_t i) {
    const int64_t begin = i * N / count, end = (i + 1) * N / count;
    for (int64_t n = begin; n < end; ++n) {
      float* target = out + n * F;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t row = index[k * N + n];
        if (row < 0 || row >= R) throw std::out_of_range(OutOfRange(row, R));
        const float* source = table + (k * R + row) * F;
        if (k == 0) {
          std::memcpy(target, source, F * sizeof(float));
        } else {
#pragma omp simd
          for (int64_t f = 0; f < F; ++f) target[f] += source[f];
        }
      }
    }
  };
  const std::string error = conv1dx::ParallelFor(pool, count, run);
  return error.empty() ? ffi::Error::Success() : ffi::Error::InvalidArgument(error);
}

ffi::Error TapsScatter(ffi::ThreadPool pool, F32 dy, S32 rows, F32Result d_projected) {
  const auto dd = dy.dimensions(), rd = rows.dimensions(), pd = d_projected->dimensions();
  if (dd.size() != 3 || rd.size() != 3 || pd.size() != 3 || pd[0] != rd[0] || dd[0] != rd[1] || dd[1] != rd[2] ||
      dd[2] != pd[2]) {
    return ffi::Error::InvalidArgument(
        "conv1dx embedding taps: dy (B, O, F), rows (K, B, O) and d_projected (K, R, F) expected");
  }
  const int64_t K = pd[0], R = pd[1], F = pd[2], N = rd[1] * rd[2];
  const float* gradient = dy.typed_data();
  const int32_t* index = rows.typed_data();
  float* out = d_projected->typed_data();
  if (K == 0 || R == 0 || F == 0) return ffi::Error::Success();
  auto run = [&](int64_t k) {
    float* slice = out + k * R * F;
    std::fill(slice, slice + R * F, 0.0f);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t row = index[k * N + n];
      if (row < 0 || row >= R) throw std::out_of_range(OutOfRange(row, R));
      float* target = slice + row * F;
      const float* source = gradient + n * F;
#pragma omp simd
      for (int64_t f = 0; f < F; ++f) target[f] += source[f];
    }
  };
  const std::string error = conv1dx::ParallelFor(pool, K, run);
  return error.empty() ? ffi::Error::Success() : ffi::Error::InvalidArgument(error);
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(Conv1dxEmbeddingTapsSum, TapsSum,
                              ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<F32>().Arg<S32>().Ret<F32>());
XLA_FFI_DEFINE_HANDLER_SYMBOL(Conv1dxEmbeddingTapsScatter, TapsScatter,
                              ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<F32>().Arg<S32>().Ret<F32>());

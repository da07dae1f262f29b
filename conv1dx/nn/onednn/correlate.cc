// A stride-1 correlation as an XLA FFI handler with conv1dx's own AVX-512 loops (float32): the forward pass
// and the input gradient of conv1dx's convolution when its stride is 1.
//
//   conv1dx_correlate_direct   src (B, S, I), weights (K, I, N) -> out (B, T, N)
//       out[b, t, n] = sum_{k, i} src[b, t - lead + k * dilation, i] * weights[k, i, n]
//   with src rows outside [0, S) read as zeros; T is the result's length, `lead` any integer.
//
// The forward pass is this with src = x, weights = the kernel, lead = pad_left and T = O; the input gradient
// is this with src = dy, weights[k, f, c] = kernel[K - 1 - k, c, f] and lead = (K - 1) * dilation - pad_left,
// T = the input's length (conv_ops.py passes both).
//
// The vectors run across 16 examples: one vector holds src[b0 .. b0 + 15, row, i], so every lane has the same
// window geometry and no lane is wasted on a channel or time count that is not a multiple of 16 (C = 100 would
// waste 11% of the lanes). For each block of 16 examples, src is copied once into an interleaved scratch
// (row, i, lane) with zero rows above and below, so the padding needs no masks. A tile is R <= 2 output rows
// t by up to 14 output channels n, R x 14 accumulators in registers while the loop runs over the taps k and
// the input channels i: R vector loads of src and one broadcast of weights per n, R fused multiply-adds per
// broadcast. Taps that read only padding for every row of a tile are skipped. The accumulators are transposed in
// registers (16 x 16) and written back with one masked store per example and row: out[b0 + lane, t, n0 ...].
//
// Threads (the calling thread and XLA's intra-op pool) take contiguous runs of (example block, channel tile,
// 32 output rows) work items; each output element is summed by one tile in a fixed order (k, then i), the tiles
// not depending on the split: the same bits on every call, whatever the pool size. On WISDM's second
// convolution (B 400, T 71, C 100, F 100, K 10) the input gradient took 0.84 of the time of the best of XLA
// and oneDNN in two runs, about 186 GFLOP/s (experiments/conv_lowering/README.md, "The direct forward and
// input gradient"). Needs AVX-512F (`conv1dx_kernel_gradient_direct_supported()`, shared with
// kernel_gradient.cc).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "parallel_for.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kLanes = 16;     // examples per vector
constexpr int kMaxRows = 2;        // output rows t per tile
constexpr int kMaxChannels = 14;   // output channels n per tile: 28 accumulators, 2 loads, 1 broadcast

struct Geometry {
  int64_t B, S, I, K, N, T, lead, dilation;
};

// The scratch of one block of examples: rows [0, S + 2 * kTop) of (I x 16) floats; src row s sits at row
// s + kTop. A tile reads only the taps for which one of its rows reads a src row (see ComputeCorrelation), so
// its other rows read at most kMaxRows - 1 rows beyond either end of src: zero rows.
constexpr int64_t kTop = kMaxRows - 1;

// Transposes the 16 x 16 matrix whose rows are m[0..15]: at each level s = 8, 4, 2, 1 every pair of rows
// (i, i + s) with bit s of i clear swaps its off-diagonal s x s blocks (row i's columns with bit s set with row
// i + s's columns with bit s clear), the recursive block transpose.
__attribute__((target("avx512f"))) inline void Transpose16(__m512 m[kLanes]) {
#pragma GCC unroll 4
  for (int s = 8; s >= 1; s /= 2) {
    alignas(64) int32_t low[kLanes], high[kLanes];
    for (int j = 0; j < kLanes; ++j) {
      low[j] = (j & s) ? kLanes + j - s : j;   // row i keeps its left columns, takes row i + s's left ones
      high[j] = (j & s) ? kLanes + j : j + s;  // row i + s takes row i's right columns, keeps its right ones
    }
    const __m512i take_low = _mm512_load_si512(low), take_high = _mm512_load_si512(high);
#pragma GCC unroll 16
    for (int i = 0; i < kLanes; ++i) {
      if (i & s) continue;
      const __m512 a = m[i], b = m[i + s];
      m[i] = _mm512_permutex2var_ps(a, take_low, b);
      m[i + s] = _mm512_permutex2var_ps(a, take_high, b);
    }
  }
}

// out[b0 + lane, t0 + r, n0 + j] for r < ROWS, j < CHANNELS from taps [k_lo, k_hi); `lanes` masks the
// examples that exist. `window` is the scratch row of tap 0 for row t0.
template <int ROWS, int CHANNELS>
__attribute__((target("avx512f"))) void Tile(const float* scratch, const float* weights, float* out,
                                             const Geometry& g, int64_t window, int64_t k_lo, int64_t k_hi,
                                             int64_t b0, int64_t t0, int64_t n0, uint32_t lanes) {
  __m512 acc[ROWS][CHANNELS];
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; ++r) {
#pragma GCC unroll 16
    for (int j = 0; j < CHANNELS; ++j) acc[r][j] = _mm512_setzero_ps();
  }
  const int64_t row_floats = g.I * kLanes;
  for (int64_t k = k_lo; k < k_hi; ++k) {
    const float* a = scratch + (window + k * g.dilation) * row_floats;
    const float* w = weights + k * g.I * g.N + n0;
    for (int64_t i = 0; i < g.I; ++i, a += kLanes, w += g.N) {
      __m512 src[ROWS];
#pragma GCC unroll 4
      for (int r = 0; r < ROWS; ++r) src[r] = _mm512_load_ps(a + r * row_floats);
#pragma GCC unroll 16
      for (int j = 0; j < CHANNELS; ++j) {
        const __m512 wj = _mm512_set1_ps(w[j]);
#pragma GCC unroll 4
        for (int r = 0; r < ROWS; ++r) acc[r][j] = _mm512_fmadd_ps(src[r], wj, acc[r][j]);
      }
    }
  }
  // Channels x lanes -> lanes x channels in registers, then one masked store of CHANNELS values per example.
  const int64_t example_stride = g.T * g.N;
  const __mmask16 channel_mask = static_cast<__mmask16>((1u << CHANNELS) - 1);
  for (int r = 0; r < ROWS; ++r) {
    __m512 rows[kLanes];
#pragma GCC unroll 16
    for (int j = 0; j < kLanes; ++j) rows[j] = j < CHANNELS ? acc[r][j] : _mm512_setzero_ps();
    Transpose16(rows);
    float* target = out + (b0 * g.T + t0 + r) * g.N + n0;
    for (int64_t lane = 0; lane < kLanes; ++lane) {
      if (lanes >> lane & 1) _mm512_mask_storeu_ps(target + lane * example_stride, channel_mask, rows[lane]);
    }
  }
}

using TileFn = void (*)(const float*, const float*, float*, const Geometry&, int64_t, int64_t, int64_t, int64_t,
                        int64_t, int64_t, uint32_t);

template <int ROWS, int... J>
constexpr std::array<TileFn, kMaxChannels> ChannelTable(std::integer_sequence<int, J...>) {
  return {&Tile<ROWS, J + 1>...};
}

template <int... R>
constexpr std::array<std::array<TileFn, kMaxChannels>, kMaxRows> TileTable(std::integer_sequence<int, R...>) {
  return {ChannelTable<R + 1>(std::make_integer_sequence<int, kMaxChannels>{})...};
}

constexpr auto kTiles = TileTable(std::make_integer_sequence<int, kMaxRows>{});

uint32_t ExampleLanes(const Geometry& g, int64_t b0) {
  const int64_t n = std::min(kLanes, g.B - b0);
  return n == kLanes ? 0xFFFFu : (1u << n) - 1;
}

// Copies src[b0 .. b0 + 15] into the scratch's rows [top, top + S) as (row, i, lane); absent examples are 0.
__attribute__((target("avx512f"))) void Interleave(const float* src, float* scratch, const Geometry& g,
                                                   int64_t b0) {
  const __mmask16 lanes = static_cast<__mmask16>(ExampleLanes(g, b0));
  const int64_t per_example = g.S * g.I;
  const float* base = src + b0 * per_example;
  float* first = scratch + kTop * g.I * kLanes;
  if (per_example <= std::numeric_limits<int32_t>::max() / kLanes) {
    const __m512i offsets = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(static_cast<int32_t>(per_example)));
    for (int64_t e = 0; e < per_example; ++e) {
      // Masked-off lanes are not read (AVX-512 masked gathers do not fault).
      _mm512_store_ps(first + e * kLanes, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, offsets, base + e, 4));
    }
    return;
  }
  for (int64_t e = 0; e < per_example; ++e) {
    for (int64_t lane = 0; lane < kLanes; ++lane) {
      first[e * kLanes + lane] = (lanes >> lane & 1) ? base[lane * per_example + e] : 0.0f;
    }
  }
}

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};

// At least `floats` floats, 64-byte aligned, kept by the calling thread for its later calls (XLA's pool threads
// live as long as the process), so a call neither maps nor faults in fresh pages; grown when too small.
float* ThreadScratch(int64_t floats) {
  thread_local std::unique_ptr<float, AlignedFree> scratch;
  thread_local int64_t capacity = 0;
  if (floats > capacity) {
    const int64_t rounded = (floats + 15) / 16 * 16;  // a multiple of 64 bytes, as aligned_alloc requires
    scratch.reset(static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(rounded) * sizeof(float))));
    capacity = scratch ? rounded : 0;
    if (!scratch) throw std::bad_alloc();
  }
  return scratch.get();
}

// Runs run(0) ... run(count - 1), each once (on any threads); returns the first error, "" if none.
using ParallelRunner = std::function<std::string(int64_t count, std::function<void(int64_t)> run)>;

// Output rows per work item (a multiple of kMaxRows, so the tiles are the same however the rows are split).
constexpr int64_t kChunkRows = 16 * kMaxRows;

// out (B, T, N) of a checked geometry (B, T, N, S, I >= 1), its work items (example block, channel tile, run of
// kChunkRows rows) split into at most `threads` contiguous runs, each with its own scratch.
std::string ComputeCorrelation(const float* src, const float* weights, float* out, const Geometry& g,
                               int64_t threads, const ParallelRunner& parallel) {
  const int64_t channel_tiles = (g.N + kMaxChannels - 1) / kMaxChannels;
  const int64_t channels = (g.N + channel_tiles - 1) / channel_tiles;  // per tile; the last may have fewer
  const int64_t row_chunks = (g.T + kChunkRows - 1) / kChunkRows;
  const int64_t blocks = (g.B + kLanes - 1) / kLanes;
  const int64_t items = blocks * channel_tiles * row_chunks;
  const int64_t count = std::clamp<int64_t>(threads, 1, items);
  const int64_t row_floats = g.I * kLanes;
  auto run = [&](int64_t chunk) {
    float* scratch = ThreadScratch((g.S + 2 * kTop) * row_floats);
    std::memset(scratch, 0, kTop * row_floats * sizeof(float));  // the zero rows; Interleave writes the others
    std::memset(scratch + (kTop + g.S) * row_floats, 0, kTop * row_floats * sizeof(float));
    int64_t copied = -1;
    for (int64_t item = chunk * items / count; item < (chunk + 1) * items / count; ++item) {
      const int64_t block = item / (channel_tiles * row_chunks), b0 = block * kLanes;
      if (block != copied) {
        Interleave(src, scratch, g, b0);
        copied = block;
      }
      const uint32_t lanes = ExampleLanes(g, b0);
      const int64_t n0 = (item / row_chunks % channel_tiles) * channels, width = std::min(channels, g.N - n0);
      const int64_t t_begin = item % row_chunks * kChunkRows, t_end = std::min(g.T, t_begin + kChunkRows);
      for (int64_t t0 = t_begin; t0 < t_end; t0 += kMaxRows) {
        const int64_t rows = std::min<int64_t>(kMaxRows, t_end - t0);
        // The taps k for which some row of the tile reads a src row: first + k * dilation <= S - 1 and
        // last + k * dilation >= 0 (first, last: the src rows of tap 0 for the tile's first and last rows).
        const int64_t first = t0 - g.lead, last = first + rows - 1;
        const int64_t k_lo = last >= 0 ? 0 : (-last + g.dilation - 1) / g.dilation;
        const int64_t k_hi = g.S - 1 - first < 0 ? 0 : std::min(g.K, (g.S - 1 - first) / g.dilation + 1);
        if (k_hi <= k_lo) {  // every row reads only padding
          kTiles[rows - 1][width - 1](scratch, weights, out, g, 0, 0, 0, b0, t0, n0, lanes);
        } else {
          kTiles[rows - 1][width - 1](scratch, weights, out, g, first + kTop, k_lo, k_hi, b0, t0, n0, lanes);
        }
      }
    }
  };
  return parallel(count, run);
}

ffi::Error CorrelateDirect(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> src, ffi::Buffer<ffi::F32> weights,
                           ffi::ResultBuffer<ffi::F32> out, int64_t lead, int64_t dilation) {
  if (!__builtin_cpu_supports("avx512f")) {
    return ffi::Error::Internal("conv1dx direct correlation: this CPU lacks AVX-512F");
  }
  const auto sd = src.dimensions(), wd = weights.dimensions(), od = out->dimensions();
  if (sd.size() != 3 || wd.size() != 3 || od.size() != 3 || od[0] != sd[0] || wd[1] != sd[2] || od[2] != wd[2]) {
    return ffi::Error::InvalidArgument(
        "conv1dx direct correlation: src (B, S, I), weights (K, I, N) and out (B, T, N) expected");
  }
  // (Bounds far beyond any sequence, so that no index arithmetic below can overflow.)
  constexpr int64_t kLimit = int64_t{1} << 40;
  if (dilation < 1 || wd[0] < 1 || dilation > kLimit / wd[0] || lead < -kLimit || lead > kLimit ||
      sd[1] > kLimit || od[1] > kLimit) {
    return ffi::Error::InvalidArgument("conv1dx direct correlation: dilation and K must be >= 1, and dilation * K, "
                                       "|lead| and the lengths at most 2^40");
  }
  const Geometry g{sd[0], sd[1], sd[2], wd[0], wd[2], od[1], lead, dilation};
  float* result = out->typed_data();
  if (g.B == 0 || g.T == 0 || g.N == 0) return ffi::Error::Success();
  if (g.I == 0 || g.S == 0) {
    std::fill(result, result + g.B * g.T * g.N, 0.0f);
    return ffi::Error::Success();
  }
  const std::string error = ComputeCorrelation(
      src.typed_data(), weights.typed_data(), result, g, pool.num_threads(),
      [&pool](int64_t count, std::function<void(int64_t)> run) { return conv1dx::ParallelFor(pool, count, run); });
  return error.empty() ? ffi::Error::Success() : ffi::Error::Internal(error);
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(Conv1dxCorrelateDirect, CorrelateDirect,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("lead")
                                  .Attr<int64_t>("dilation"));

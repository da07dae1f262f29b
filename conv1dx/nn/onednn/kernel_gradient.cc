// The kernel gradient of conv1dx's convolution as an XLA FFI handler with its own AVX-512 loops (float32).
//
//   conv1dx_kernel_gradient_direct   x (B, T, C), dy (B, O, F) -> dkernel (K, C, F)
//       dkernel[k, c, f] = sum_{b, o} xpad[b, o * stride + k * dilation, c] * dy[b, o, f]
//
// As a matrix product, dkernel viewed as (K C, F) is patches^T @ dy over the B O rows (b, o), where the
// patch of row (b, o) holds the x values its window reads. Nothing is copied to form the patches: with
// dilation 1 a window's K C values are contiguous in x (rows o * stride - pad_left .. + K - 1), so a patch
// is a pointer into x; with dilation > 1 each tap k is a contiguous run of C values. Window rows outside
// [0, T) (the padding) are read as zeros through masked loads.
//
// The product is tiled: a tile is 32 consecutive rows m of the (K C, F) gradient (two 16-float vectors of
// contiguous x values) by up to 14 columns f, kept in 28 vector registers while the loop runs over (b, o)
// rows, adding x[patch m] * dy[b, o, f] (one broadcast of dy per column, two fused multiply-adds). With
// dilation > 1 a tile never spans two taps. The batch is walked in blocks that fit the core's cache (x and
// dy rows of kBlockBytes), every tile of a thread visiting the block before the next block is read, the
// tiles' sums parked in a buffer between blocks. Threads (the calling thread and XLA's intra-op pool)
// own disjoint tiles, so each gradient element is summed by one thread in a fixed order (block by block;
// within a block the rows whose windows reach into the left padding, then the interior rows, then the
// right ones, each example by example): the same bits on every call, whatever the pool size.
//
// XLA's CPU convolution computes this pass from transposed copies of x and dy; on WISDM's second
// convolution (B 400, T 71, C 100, F 100, K 10) these loops ran at 198 GFLOP/s, 91% of the machine's float32 matmul peak, where
// the best of XLA and oneDNN took 1.29 times as long (experiments/conv_lowering/README.md, "The direct
// kernel gradient"). The handler needs AVX-512F (`conv1dx_kernel_gradient_direct_supported()`);
// conv_ops offers it only where the CPU has it.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "parallel_for.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kLanes = 32;        // gradient rows m per tile (two 16-float vectors)
constexpr int64_t kMaxColumns = 14;   // gradient columns f per tile: 28 accumulators, 31 of 32 registers
constexpr int64_t kBlockBytes = 256 << 10;  // x and dy bytes of one batch block

// A tile's rows: gradient rows [row, row + lanes) read x at offsets [offset, offset + lanes) from the
// start of a window (row o * stride - pad_left of x).
struct TileRows {
  int64_t row, offset, lanes;
};

struct Geometry {
  int64_t B, T, C, F, K, O, stride, pad_left, dilation;
};

// The 32-lane mask of lanes [lo, hi) (empty when hi <= lo).
inline uint32_t LaneMask(int64_t lo, int64_t hi) {
  lo = std::max<int64_t>(lo, 0);
  hi = std::min<int64_t>(hi, kLanes);
  if (hi <= lo) return 0;
  const uint32_t below_hi = hi == kLanes ? 0xFFFFFFFFu : (1u << hi) - 1;
  return below_hi & ~((1u << lo) - 1);
}

// Adds rows o in [o_begin, o_end) of examples [b_begin, b_end) into the tile's sums (acc: COLUMNS x 32
// floats, column-major in the tile). EDGE: some windows of these rows reach into the padding, so the
// lanes are masked per row; otherwise every window lies inside x.
template <int COLUMNS, bool EDGE>
__attribute__((target("avx512f"))) void AddRows(const float* x, const float* dy, float* acc, const Geometry& g,
                                                const TileRows& tile, int64_t column, int64_t b_begin,
                                                int64_t b_end, int64_t o_begin, int64_t o_end) {
  __m512 low[COLUMNS], high[COLUMNS];
#pragma GCC unroll 16
  for (int j = 0; j < COLUMNS; ++j) {
    low[j] = _mm512_loadu_ps(acc + kLanes * j);
    high[j] = _mm512_loadu_ps(acc + kLanes * j + 16);
  }
  const uint32_t lanes = LaneMask(0, tile.lanes);
  // Unmasked loads where no lane can be off (7% faster than masked ones on the AMD EPYC measured).
  const bool whole = !EDGE && tile.lanes == kLanes;
  const int64_t step = g.stride * g.C, length = g.T * g.C;
  for (int64_t b = b_begin; b < b_end; ++b) {
    // Offset in x[b] of lane 0 for row o_begin (negative in the left padding).
    int64_t start = (o_begin * g.stride - g.pad_left) * g.C + tile.offset;
    const float* xb = x + b * length;
    const float* d = dy + (b * g.O + o_begin) * g.F + column;
    for (int64_t o = o_begin; o < o_end; ++o, start += step, d += g.F) {
      const uint32_t mask = EDGE ? lanes & LaneMask(-start, length - start) : lanes;
      // Masked-off lanes are not read (AVX-512 masked loads do not fault), so `xb + start` may lie outside
      // x on padded rows.
      const __m512 a0 = whole ? _mm512_loadu_ps(xb + start)
                              : _mm512_maskz_loadu_ps(static_cast<__mmask16>(mask), xb + start);
      const __m512 a1 = whole ? _mm512_loadu_ps(xb + start + 16)
                              : _mm512_maskz_loadu_ps(static_cast<__mmask16>(mask >> 16), xb + start + 16);
#pragma GCC unroll 16
      for (int j = 0; j < COLUMNS; ++j) {
        const __m512 dj = _mm512_set1_ps(d[j]);
        low[j] = _mm512_fmadd_ps(a0, dj, low[j]);
        high[j] = _mm512_fmadd_ps(a1, dj, high[j]);
      }
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < COLUMNS; ++j) {
    _mm512_storeu_ps(acc + kLanes * j, low[j]);
    _mm512_storeu_ps(acc + kLanes * j + 16, high[j]);
  }
}

// Rows [o_lo, o_hi) have every window inside x; the others reach into the padding.
struct InteriorRows {
  int64_t o_lo, o_hi;
};

InteriorRows Interior(const Geometry& g) {
  // o * stride >= pad_left  and  o * stride - pad_left + (K - 1) * dilation + 1 <= T
  const int64_t o_lo = std::min(g.O, (g.pad_left + g.stride - 1) / g.stride);
  const int64_t last = g.T + g.pad_left - (g.K - 1) * g.dilation - 1;  // largest o * stride allowed
  const int64_t o_hi = last < 0 ? o_lo : std::clamp(last / g.stride + 1, o_lo, g.O);
  return {o_lo, o_hi};
}

template <int COLUMNS>
void AddBlock(const float* x, const float* dy, float* acc, const Geometry& g, const InteriorRows& interior,
              const TileRows& tile, int64_t column, int64_t b_begin, int64_t b_end) {
  if (interior.o_lo > 0) AddRows<COLUMNS, true>(x, dy, acc, g, tile, column, b_begin, b_end, 0, interior.o_lo);
  if (interior.o_hi > interior.o_lo) {
    AddRows<COLUMNS, false>(x, dy, acc, g, tile, column, b_begin, b_end, interior.o_lo, interior.o_hi);
  }
  if (g.O > interior.o_hi) AddRows<COLUMNS, true>(x, dy, acc, g, tile, column, b_begin, b_end, interior.o_hi, g.O);
}

using AddBlockFn = void (*)(const float*, const float*, float*, const Geometry&, const InteriorRows&,
                            const TileRows&, int64_t, int64_t, int64_t);

template <int... N>
constexpr std::array<AddBlockFn, sizeof...(N)> AddBlockTable(std::integer_sequence<int, N...>) {
  return {&AddBlock<N + 1>...};
}

constexpr auto kAddBlock = AddBlockTable(std::make_integer_sequence<int, kMaxColumns>{});

// The gradient's row tiles: one run of K C rows with dilation 1, else K runs of C rows (one per tap).
std::vector<TileRows> RowTiles(const Geometry& g) {
  std::vector<TileRows> tiles;
  const bool contiguous = g.dilation == 1;
  const int64_t runs = contiguous ? 1 : g.K, run_length = contiguous ? g.K * g.C : g.C;
  for (int64_t k = 0; k < runs; ++k) {
    for (int64_t first = 0; first < run_length; first += kLanes) {
      tiles.push_back({k * g.C + first, k * g.dilation * g.C + first, std::min(kLanes, run_length - first)});
    }
  }
  return tiles;
}

// Runs run(0) ... run(count - 1), each once (on any threads); returns the first error, "" if none.
using ParallelRunner = std::function<std::string(int64_t count, std::function<void(int64_t)> run)>;

// dkernel (K, C, F) of a geometry already checked (O follows from T, K and the geometry; B, O >= 1), its
// tiles split into at most `threads` chunks run by `parallel`. Returns the first error ("" if none).
// (tests/kernel_gradient_guarded.cc calls it on operands that end at unreadable pages.)
std::string ComputeKernelGradient(const float* x, const float* dy, float* out, const Geometry& g, int64_t threads,
                                  const ParallelRunner& parallel) {
  const std::vector<TileRows> row_tiles = RowTiles(g);
  const int64_t column_tiles = (g.F + kMaxColumns - 1) / kMaxColumns;
  const int64_t columns = (g.F + column_tiles - 1) / column_tiles;  // per tile; the last may have fewer
  const int64_t tiles = static_cast<int64_t>(row_tiles.size()) * column_tiles;
  const int64_t block = std::max<int64_t>(1, kBlockBytes / (4 * (g.T * g.C + g.O * g.F)));
  const InteriorRows interior = Interior(g);
  std::vector<float> sums(tiles * columns * kLanes, 0.0f);
  const int64_t count = std::clamp<int64_t>(threads, 1, tiles);
  auto run = [&](int64_t chunk) {
    const int64_t first = chunk * tiles / count, last = (chunk + 1) * tiles / count;
    for (int64_t b = 0; b < g.B; b += block) {
      for (int64_t i = first; i < last; ++i) {
        const TileRows& tile = row_tiles[i / column_tiles];
        const int64_t column = (i % column_tiles) * columns, width = std::min(columns, g.F - column);
        kAddBlock[width - 1](x, dy, sums.data() + i * columns * kLanes, g, interior, tile, column, b,
                             std::min(g.B, b + block));
      }
    }
    for (int64_t i = first; i < last; ++i) {
      const TileRows& tile = row_tiles[i / column_tiles];
      const int64_t column = (i % column_tiles) * columns, width = std::min(columns, g.F - column);
      const float* acc = sums.data() + i * columns * kLanes;
      for (int64_t lane = 0; lane < tile.lanes; ++lane) {
        float* target = out + (tile.row + lane) * g.F + column;
        for (int64_t j = 0; j < width; ++j) target[j] = acc[j * kLanes + lane];
      }
    }
  };
  return parallel(count, run);
}

// The number of windows: O = floor(span / stride) + 1, none (0) when the kernel is longer than the padded
// input (span < 0).
int64_t OutputLength(int64_t T, int64_t K, int64_t stride, int64_t pad_left, int64_t pad_right, int64_t dilation) {
  const int64_t span = T + pad_left + pad_right - dilation * (K - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

ffi::Error KernelGradientDirect(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                                ffi::ResultBuffer<ffi::F32> dkernel, int64_t stride, int64_t pad_left,
                                int64_t pad_right, int64_t dilation) {
  if (!__builtin_cpu_supports("avx512f")) {
    return ffi::Error::Internal("conv1dx direct kernel gradient: this CPU lacks AVX-512F");
  }
  const auto xd = x.dimensions(), dyd = dy.dimensions(), kd = dkernel->dimensions();
  if (xd.size() != 3 || dyd.size() != 3 || kd.size() != 3 || xd[0] != dyd[0] || kd[1] != xd[2] ||
      kd[2] != dyd[2]) {
    return ffi::Error::InvalidArgument(
        "conv1dx direct kernel gradient: x (B, T, C), dy (B, O, F) and dkernel (K, C, F) expected");
  }
  const Geometry g{xd[0], xd[1], xd[2], dyd[2], kd[0], dyd[1], stride, pad_left, dilation};
  if (stride < 1 || dilation < 1 || pad_left < 0 || pad_right < 0) {
    return ffi::Error::InvalidArgument("conv1dx direct kernel gradient: stride and dilation must be >= 1, "
                                       "padding >= 0");
  }
  if (g.O != OutputLength(g.T, g.K, stride, pad_left, pad_right, dilation)) {
    return ffi::Error::InvalidArgument("conv1dx direct kernel gradient: O does not follow from T, K and the "
                                       "stride, padding and dilation");
  }
  float* out = dkernel->typed_data();
  std::fill(out, out + g.K * g.C * g.F, 0.0f);
  if (g.B == 0 || g.O == 0 || g.C == 0 || g.F == 0) return ffi::Error::Success();
  const std::string error = ComputeKernelGradient(
      x.typed_data(), dy.typed_data(), out, g, pool.num_threads(),
      [&pool](int64_t count, std::function<void(int64_t)> run) { return conv1dx::ParallelFor(pool, count, run); });
  return error.empty() ? ffi::Error::Success() : ffi::Error::Internal(error);
}

}  // namespace

extern "C" int conv1dx_kernel_gradient_direct_supported() { return __builtin_cpu_supports("avx512f") ? 1 : 0; }

XLA_FFI_DEFINE_HANDLER_SYMBOL(Conv1dxKernelGradientDirect, KernelGradientDirect,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("stride")
                                  .Attr<int64_t>("pad_left")
                                  .Attr<int64_t>("pad_right")
                                  .Attr<int64_t>("dilation"));

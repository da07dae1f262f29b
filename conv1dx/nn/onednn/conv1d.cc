// oneDNN's 1D convolution passes as XLA FFI handlers, called from conv1dx.nn.conv_ops through jax.ffi.
//
// Layouts are conv1dx's: x (B, T, C) and y (B, O, F) channels-last, the kernel (K, C, F); float32, one
// group. Each handler takes the geometry as attributes (stride, pad_left, pad_right, dilation) and a
// `blocked` flag: 0 runs oneDNN on the channels-last arrays directly; 1 lets oneDNN pick its own
// (blocked) layouts and reorders the operands into them and the result back, inside the call.
//
//   conv1dx_onednn_forward          x, kernel -> y                 y[b,o,f] = sum_{k,c} xpad[b,o*s+k*d,c] w[k,c,f]
//   conv1dx_onednn_input_gradient   dy, kernel -> dx (B, T, C)     the transpose of the forward in x
//   conv1dx_onednn_kernel_gradient  x, dy -> dkernel (K, C, F)     the transpose of the forward in the kernel
//
// Threads: a call splits the batch into one chunk per thread of XLA's intra-op pool (`ffi::ThreadPool`)
// and runs each chunk single-threaded, on the calling thread and on the pool's threads, the way XLA runs
// its own convolutions. oneDNN's OpenMP threads are never used: waking a separate OpenMP team beside
// XLA's pool, whose threads spin between tasks, cost the training epoch more than the call itself.
// Chunks are claimed from a counter, so the caller finishes alone when the pool is busy (no deadlock).
// The kernel gradient sums the chunks' partial gradients in chunk order, split by element across threads
// (the same bits on every call with the same pool size; the chunks follow the pool size).
//
// A plan (the primitive, its reorders and memory descriptors) is built on the first call for a geometry
// and kept for the life of the process. Executing a plan allocates its scratchpad and blocked buffers per
// call, so concurrent calls (XLA may run independent thunks in parallel) share nothing mutable.
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dnnl.hpp"
#include "parallel_for.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using conv1dx::ParallelFor;

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

enum Pass : int64_t { kForward = 0, kInputGradient = 1, kKernelGradient = 2 };

// pass, B, T, C, F, K, O, stride, pad_left, pad_right, dilation, blocked
using Key = std::array<int64_t, 12>;

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// One operand of a primitive: its oneDNN argument id, conv1dx's layout and the primitive's, and the
// reorder between them when they differ (user -> primitive for inputs, primitive -> user for the output).
struct Operand {
  int arg = 0;
  memory::desc user;
  memory::desc own;
  bool reordered = false;
  dnnl::reorder reorder;
  memory::desc reorder_scratchpad;
};

struct Plan {
  dnnl::primitive primitive;
  memory::desc scratchpad;
  Operand in0, in1, out;
};

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

Operand MakeOperand(int arg, const memory::desc& user, const memory::desc& own, bool is_output) {
  Operand operand;
  operand.arg = arg;
  operand.user = user;
  operand.own = own;
  operand.reordered = user != own;
  if (operand.reordered) {
    auto pd = is_output ? dnnl::reorder::primitive_desc(Engine(), own, Engine(), user, UserScratchpad())
                        : dnnl::reorder::primitive_desc(Engine(), user, Engine(), own, UserScratchpad());
    operand.reorder = dnnl::reorder(pd);
    operand.reorder_scratchpad = pd.scratchpad_desc();
  }
  return operand;
}

std::shared_ptr<const Plan> MakePlan(const Key& key) {
  const auto [pass, B, T, C, F, K, O, stride, pad_left, pad_right, dilation, blocked] = key;
  const memory::desc x_user({B, C, T}, dt::f32, tag::nwc);
  const memory::desc w_user({F, C, K}, dt::f32, tag::wio);
  const memory::desc y_user({B, F, O}, dt::f32, tag::nwc);
  auto choice = [&](const memory::desc& user) {
    return blocked ? memory::desc(user.get_dims(), dt::f32, tag::any) : user;
  };
  const memory::dims strides{stride}, dilates{dilation - 1}, left{pad_left}, right{pad_right};
  const auto attr = UserScratchpad();
  const auto algorithm = dnnl::algorithm::convolution_direct;
  auto forward = dnnl::convolution_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_training, algorithm, choice(x_user), choice(w_user), choice(y_user),
      strides, dilates, left, right, attr);
  auto plan = std::make_shared<Plan>();
  if (pass == kForward) {
    plan->primitive = dnnl::convolution_forward(forward);
    plan->scratchpad = forward.scratchpad_desc();
    plan->in0 = MakeOperand(DNNL_ARG_SRC, x_user, forward.src_desc(), false);
    plan->in1 = MakeOperand(DNNL_ARG_WEIGHTS, w_user, forward.weights_desc(), false);
    plan->out = MakeOperand(DNNL_ARG_DST, y_user, forward.dst_desc(), true);
  } else if (pass == kInputGradient) {
    auto pd = dnnl::convolution_backward_data::primitive_desc(
        Engine(), algorithm, choice(x_user), choice(w_user), choice(y_user), strides, dilates, left, right,
        forward, attr);
    plan->primitive = dnnl::convolution_backward_data(pd);
    plan->scratchpad = pd.scratchpad_desc();
    plan->in0 = MakeOperand(DNNL_ARG_DIFF_DST, y_user, pd.diff_dst_desc(), false);
    plan->in1 = MakeOperand(DNNL_ARG_WEIGHTS, w_user, pd.weights_desc(), false);
    plan->out = MakeOperand(DNNL_ARG_DIFF_SRC, x_user, pd.diff_src_desc(), true);
  } else {
    auto pd = dnnl::convolution_backward_weights::primitive_desc(
        Engine(), algorithm, choice(x_user), choice(w_user), choice(y_user), strides, dilates, left, right,
        forward, attr);
    plan->primitive = dnnl::convolution_backward_weights(pd);
    plan->scratchpad = pd.scratchpad_desc();
    plan->in0 = MakeOperand(DNNL_ARG_SRC, x_user, pd.src_desc(), false);
    plan->in1 = MakeOperand(DNNL_ARG_DIFF_DST, y_user, pd.diff_dst_desc(), false);
    plan->out = MakeOperand(DNNL_ARG_DIFF_WEIGHTS, w_user, pd.diff_weights_desc(), true);
  }
  return plan;
}

// Makes oneDNN run on the calling thread only (OpenMP's per-thread limit), restoring the limit after.
// Plans are made and executed under it: oneDNN sizes a primitive's kernels and scratchpad by the thread
// count it sees at creation, so a plan must run with the count it was made with.
class SerialOpenmp {
 public:
  SerialOpenmp() : previous_(omp_get_max_threads()) {
    if (previous_ != 1) omp_set_num_threads(1);
  }
  ~SerialOpenmp() {
    if (previous_ != 1) omp_set_num_threads(previous_);
  }

 private:
  int previous_;
};

std::shared_ptr<const Plan> GetPlan(const Key& key) {
  static std::mutex mutex;
  static std::map<Key, std::shared_ptr<const Plan>> plans;
  std::lock_guard<std::mutex> lock(mutex);
  auto found = plans.find(key);
  if (found == plans.end()) {
    SerialOpenmp serial;
    found = plans.emplace(key, MakePlan(key)).first;
  }
  return found->second;
}

memory Scratch(const memory::desc& desc) { return memory(desc, Engine()); }

void ReorderInto(dnnl::stream& stream, const Operand& operand, memory& from, memory& to) {
  std::unordered_map<int, memory> args{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  memory scratchpad;
  if (operand.reorder_scratchpad.get_size() > 0) {
    scratchpad = Scratch(operand.reorder_scratchpad);
    args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad);
  }
  operand.reorder.execute(stream, args);
}

// Runs a plan on conv1dx's buffers: in0, in1 -> out.
void Execute(const Plan& plan, void* in0, void* in1, void* out) {
  SerialOpenmp serial;
  dnnl::stream stream(Engine());
  std::unordered_map<int, memory> args;
  auto bind_input = [&](const Operand& operand, void* data) {
    memory user(operand.user, Engine(), data);
    if (!operand.reordered) {
      args.emplace(operand.arg, user);
      return;
    }
    memory own = Scratch(operand.own);
    ReorderInto(stream, operand, user, own);
    args.emplace(operand.arg, own);
  };
  bind_input(plan.in0, in0);
  bind_input(plan.in1, in1);
  memory result_user(plan.out.user, Engine(), out);
  memory result = plan.out.reordered ? Scratch(plan.out.own) : result_user;
  args.emplace(plan.out.arg, result);
  memory scratchpad;
  if (plan.scratchpad.get_size() > 0) {
    scratchpad = Scratch(plan.scratchpad);
    args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad);
  }
  plan.primitive.execute(stream, args);
  if (plan.out.reordered) ReorderInto(stream, plan.out, result, result_user);
  stream.wait();
}

// out[j] += partial_1[j] + ... + partial_n[j] (in that order) for j in [begin, end).
void AddPartials(const std::vector<std::unique_ptr<float[]>>& partials, float* out, int64_t begin, int64_t end) {
  for (const auto& partial : partials) {
    const float* p = partial.get();
#pragma omp simd
    for (int64_t j = begin; j < end; ++j) out[j] += p[j];
  }
}

// Below this many floats to add, the caller sums the kernel gradient's partials alone.
constexpr int64_t kSerialSumFloats = 1 << 16;

ffi::Error Run(ffi::ThreadPool pool, Pass pass, int64_t B, int64_t T, int64_t C, int64_t F, int64_t K, int64_t O,
               int64_t stride, int64_t pad_left, int64_t pad_right, int64_t dilation, int64_t blocked, float* in0,
               float* in1, float* out) {
  if (stride < 1 || dilation < 1 || pad_left < 0 || pad_right < 0) {
    return ffi::Error::InvalidArgument("conv1dx oneDNN convolution: stride and dilation must be >= 1, padding >= 0");
  }
  if (B < 1 || T < 1 || C < 1 || F < 1 || K < 1 || O < 1) {
    return ffi::Error::InvalidArgument("conv1dx oneDNN convolution: every dimension must be >= 1 (conv_ops "
                                       "keeps empty arrays on XLA's convolution)");
  }
  try {
    const int64_t count = std::clamp<int64_t>(pool.num_threads(), 1, B);
    const int64_t x_size = T * C, y_size = O * F, kernel_size = K * C * F;
    // Batch rows of chunk i: [first(i), first(i + 1)), sizes differing by at most one.
    auto first = [B, count](int64_t i) { return i * (B / count) + std::min(i, B % count); };
    // Chunk i > 0 of the kernel gradient writes its partial sum here (every element is written).
    std::vector<std::unique_ptr<float[]>> partial_kernels;
    if (pass == kKernelGradient) {
      partial_kernels.reserve(count - 1);
      for (int64_t i = 1; i < count; ++i) partial_kernels.emplace_back(new float[kernel_size]);
    }
    auto run = [&](int64_t i) {
      const int64_t b0 = first(i), rows = first(i + 1) - b0;
      const auto plan = GetPlan({pass, rows, T, C, F, K, O, stride, pad_left, pad_right, dilation, blocked});
      if (pass == kForward) {
        Execute(*plan, in0 + b0 * x_size, in1, out + b0 * y_size);
      } else if (pass == kInputGradient) {
        Execute(*plan, in0 + b0 * y_size, in1, out + b0 * x_size);
      } else {
        Execute(*plan, in0 + b0 * x_size, in1 + b0 * y_size, i == 0 ? out : partial_kernels[i - 1].get());
      }
    };
    std::string error = ParallelFor(pool, count, run);
    if (error.empty() && !partial_kernels.empty()) {
      // Each thread sums a range of elements (bounds on 64-byte lines), unless there is little to add.
      const int64_t parts = kernel_size * (count - 1) < kSerialSumFloats ? 1 : count;
      auto bound = [&](int64_t i) { return std::min(kernel_size, (i * kernel_size / parts + 15) / 16 * 16); };
      if (parts == 1) {
        AddPartials(partial_kernels, out, 0, kernel_size);
      } else {
        auto add_range = [&](int64_t i) { AddPartials(partial_kernels, out, bound(i), bound(i + 1)); };
        error = ParallelFor(pool, parts, add_range);
      }
    }
    if (!error.empty()) return ffi::Error::Internal(error);
  } catch (const std::exception& e) {
    return ffi::Error::Internal(std::string("conv1dx oneDNN convolution failed: ") + e.what());
  } catch (...) {
    return ffi::Error::Internal("conv1dx oneDNN convolution failed with an unknown exception");
  }
  return ffi::Error::Success();
}

using F32 = ffi::Buffer<ffi::F32>;
using F32Result = ffi::ResultBuffer<ffi::F32>;

ffi::Error Forward(ffi::ThreadPool pool, F32 x, F32 kernel, F32Result y, int64_t stride, int64_t pad_left,
                   int64_t pad_right, int64_t dilation, int64_t blocked) {
  const auto xd = x.dimensions(), kd = kernel.dimensions(), yd = y->dimensions();
  return Run(pool, kForward, xd[0], xd[1], xd[2], kd[2], kd[0], yd[1], stride, pad_left, pad_right, dilation, blocked,
             x.typed_data(), kernel.typed_data(), y->typed_data());
}

ffi::Error InputGradient(ffi::ThreadPool pool, F32 dy, F32 kernel, F32Result dx, int64_t stride, int64_t pad_left,
                         int64_t pad_right, int64_t dilation, int64_t blocked) {
  const auto dyd = dy.dimensions(), kd = kernel.dimensions(), dxd = dx->dimensions();
  return Run(pool, kInputGradient, dyd[0], dxd[1], dxd[2], kd[2], kd[0], dyd[1], stride, pad_left, pad_right, dilation,
             blocked, dy.typed_data(), kernel.typed_data(), dx->typed_data());
}

ffi::Error KernelGradient(ffi::ThreadPool pool, F32 x, F32 dy, F32Result dkernel, int64_t stride,
                          int64_t pad_left, int64_t pad_right, int64_t dilation, int64_t blocked) {
  const auto xd = x.dimensions(), dyd = dy.dimensions(), kd = dkernel->dimensions();
  return Run(pool, kKernelGradient, xd[0], xd[1], xd[2], dyd[2], kd[0], dyd[1], stride, pad_left, pad_right, dilation,
             blocked, x.typed_data(), dy.typed_data(), dkernel->typed_data());
}

auto Bind() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Arg<F32>()
      .Arg<F32>()
      .Ret<F32>()
      .Attr<int64_t>("stride")
      .Attr<int64_t>("pad_left")
      .Attr<int64_t>("pad_right")
      .Attr<int64_t>("dilation")
      .Attr<int64_t>("blocked");
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(Conv1dxOnednnForward, Forward, Bind());
XLA_FFI_DEFINE_HANDLER_SYMBOL(Conv1dxOnednnInputGradient, InputGradient, Bind());
XLA_FFI_DEFINE_HANDLER_SYMBOL(Conv1dxOnednnKernelGradient, KernelGradient, Bind());

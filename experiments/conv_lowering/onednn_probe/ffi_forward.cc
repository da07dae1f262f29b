// oneDNN's channels-last Conv1D forward as an XLA FFI handler, for the JAX check in ffi_forward.py:
// y (B, O, F) = conv(x (B, T, C), w (K, C, F)), f32, valid padding, stride 1. One primitive per shape,
// created on first use. A probe, not library code: no error handling beyond what XLA FFI gives.
#include <array>
#include <map>
#include <mutex>
#include "dnnl.hpp"
#include "xla/ffi/api/ffi.h"
namespace ffi = xla::ffi;
using namespace dnnl;
using tag = memory::format_tag;
static engine& eng() { static engine e(engine::kind::cpu, 0); return e; }
static std::mutex mu;
static std::map<std::array<int64_t, 5>, convolution_forward> cache;

static ffi::Error ConvFwdImpl(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w, ffi::ResultBuffer<ffi::F32> y) {
  auto xd = x.dimensions(); auto wd = w.dimensions();
  int64_t B = xd[0], T = xd[1], C = xd[2], K = wd[0], F = wd[2], O = T - K + 1;
  memory::desc src({B, C, T}, memory::data_type::f32, tag::nwc);
  memory::desc wei({F, C, K}, memory::data_type::f32, tag::wio);
  memory::desc dst({B, F, O}, memory::data_type::f32, tag::nwc);
  convolution_forward prim;
  {
    std::lock_guard<std::mutex> lock(mu);
    std::array<int64_t, 5> key{B, T, C, F, K};
    auto it = cache.find(key);
    if (it == cache.end()) {
      auto pd = convolution_forward::primitive_desc(eng(), prop_kind::forward_training, algorithm::convolution_direct,
                                                    src, wei, dst, {1}, {0}, {0});
      it = cache.emplace(key, convolution_forward(pd)).first;
    }
    prim = it->second;
  }
  stream s(eng());
  prim.execute(s, {{DNNL_ARG_SRC, memory(src, eng(), x.typed_data())},
                   {DNNL_ARG_WEIGHTS, memory(wei, eng(), w.typed_data())},
                   {DNNL_ARG_DST, memory(dst, eng(), y->typed_data())}});
  s.wait();
  return ffi::Error::Success();
}
XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnConv1dForward, ConvFwdImpl,
    ffi::Ffi::Bind().Arg<ffi::Buffer<ffi::F32>>().Arg<ffi::Buffer<ffi::F32>>().Ret<ffi::Buffer<ffi::F32>>());

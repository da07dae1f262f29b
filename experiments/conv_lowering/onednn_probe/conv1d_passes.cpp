// One 1D convolution's three training passes in oneDNN, timed: forward, backward data (the input
// gradient), backward weights (the kernel gradient), f32, valid padding, stride 1.
//   conv1d_passes BATCH LENGTH IN_CHANNELS FILTERS KERNEL (nwc|any)
// nwc: channels-last tensors and a (K, C, F) kernel, the layouts of conv1dx's arrays; any: the
// layouts oneDNN prefers (blocked), reorders from channels-last not counted. Prints the median of 7
// timed calls per pass (after 2 warm-up calls) and GFLOP/s = 2 B O C F K / time.
#include <chrono>
#include <cstdio>
#include <vector>
#include <algorithm>
#include <cstdlib>
#include "dnnl.hpp"
using namespace dnnl;
using tag = memory::format_tag; using dt = memory::data_type;
template <class F> double median_ms(F f, int reps = 7) {
  f(); f(); std::vector<double> t;
  for (int i = 0; i < reps; ++i) { auto a = std::chrono::steady_clock::now(); f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count()); }
  std::sort(t.begin(), t.end()); return t[reps / 2];
}
int main(int argc, char** argv) {
  if (argc < 7) { fprintf(stderr, "usage: conv1d_passes B T C F K nwc|any\n"); return 2; }
  int N = atoi(argv[1]), W = atoi(argv[2]), C = atoi(argv[3]), F = atoi(argv[4]), K = atoi(argv[5]);
  bool any = argv[6][0] == 'a';
  int O = W - K + 1; double gf = 2.0 * N * O * C * F * K / 1e9;
  engine eng(engine::kind::cpu, 0); stream s(eng);
  memory::dims src{N, C, W}, wei{F, C, K}, dst{N, F, O}, strides{1}, pad{0};
  auto st = any ? tag::any : tag::nwc, wt = any ? tag::any : tag::wio;
  memory::desc src_md(src, dt::f32, st), wei_md(wei, dt::f32, wt), dst_md(dst, dt::f32, st);
  auto fwd_pd = convolution_forward::primitive_desc(eng, prop_kind::forward_training, algorithm::convolution_direct,
      src_md, wei_md, dst_md, strides, pad, pad);
  auto bwd_d_pd = convolution_backward_data::primitive_desc(eng, algorithm::convolution_direct, src_md, wei_md, dst_md, strides, pad, pad, fwd_pd);
  auto bwd_w_pd = convolution_backward_weights::primitive_desc(eng, algorithm::convolution_direct, src_md, wei_md, dst_md, strides, pad, pad, fwd_pd);
  memory x(fwd_pd.src_desc(), eng), w(fwd_pd.weights_desc(), eng), y(fwd_pd.dst_desc(), eng);
  memory dx(bwd_d_pd.diff_src_desc(), eng), dy(bwd_d_pd.diff_dst_desc(), eng), dw(bwd_w_pd.diff_weights_desc(), eng);
  memory dyw(bwd_w_pd.diff_dst_desc(), eng), xw(bwd_w_pd.src_desc(), eng);
  for (auto* m : {&x, &w, &y, &dx, &dy, &dw, &dyw, &xw}) { float* p = (float*)m->get_data_handle(); size_t n = m->get_desc().get_size() / 4; for (size_t i = 0; i < n; ++i) p[i] = 0.001f * (i % 97); }
  auto fwd = convolution_forward(fwd_pd); auto bd = convolution_backward_data(bwd_d_pd); auto bw = convolution_backward_weights(bwd_w_pd);
  double f = median_ms([&] { fwd.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}}); s.wait(); });
  double d = median_ms([&] { bd.execute(s, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}}); s.wait(); });
  double g = median_ms([&] { bw.execute(s, {{DNNL_ARG_SRC, xw}, {DNNL_ARG_DIFF_DST, dyw}, {DNNL_ARG_DIFF_WEIGHTS, dw}}); s.wait(); });
  printf("%s N%d W%d C%d F%d K%d: fwd %.2f ms (%.0f GF/s) bwd_data %.2f ms (%.0f) bwd_weights %.2f ms (%.0f) impl %s\n", any ? "any" : "nwc",
         N, W, C, F, K, f, gf / f * 1e3, d, gf / d * 1e3, g, gf / g * 1e3, fwd_pd.impl_info_str());
}

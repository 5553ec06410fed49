// nibble_gemv_bench: the 4-bit GEMVs against the byte floor, on the 15 layer shapes of
// /work/shared/anchors (Llama-3.3-70B, Qwen3-32B, Gemma-3-27B, Llama-3-8B), M in {1, 8, 32}
// (and 16 with --m 16).
//
//   floor = bytes that must move (4-bit codes + scales (+ zeros) + x + y) / copy bandwidth,
//   the copy bandwidth measured in this run (device-to-device, bytes read + written).
//
// Timing: CUDA events around a batch of launches that rotate among enough weight copies that
// one rotation is far larger than L2 (>= 400 MB), per-launch time = batch time / launches, the
// median of many batches. A GPU-side sleep before each batch lets the host enqueue the whole batch
// first, so launch overhead is not what is timed. Every configuration that serves M is timed; `us` is the op's default
// choice, `best_us` the fastest. Anchors (bitsandbytes NF4, cuBLAS bf16 via torch) come from
// bench/gemv_anchors.py run just before, in the same session (--anchors FILE). With
// --llamacpp-anchors FILE (bench/llamacpp_mulmat.cpp's JSON, tools/run_llamacpp_anchor.sh) INT4 is
// compared with llama.cpp's Q4_0 and MXFP4 with its MXFP4 MUL_MAT; NF4 keeps bitsandbytes, and
// records llama.cpp's IQ4_NL beside it (`llamacpp_us`).
//
// usage: nibble_gemv_bench [--out FILE.json] [--anchors FILE.json] [--llamacpp-anchors FILE.json]
//                          [--quick] [--only SHAPE]
//                          [--format nf4|int4|mxfp4] [--m M] [--config I] [--configs I,J,...]
//                          [--no-dequant] [--chain | --chain-only] [--chain-configs I,J,...]
//                          [--nf4-scales fp16|fp32|dq]
// NF4 weights are drawn double-quantized, as checkpoints ship them, and timed as the engine holds
// them by default: absmax widened to fp32 (w4_widen_nested), then rounded to fp16
// (w4_narrow_absmax); --nf4-scales fp32 stops at fp32, dq keeps the 1-byte codes. The floor
// counts the double-quantized bytes in every form.
// It also times w4_dequant_bf16 per shape and format (bytes = packed weight + bf16 matrix).
//
// --chain: the GEMVs of a decode step back to back, as the engine runs them: the four of a
// Llama-3-8B layer (qkv, o, gate_up, down) x 32 layers, each layer its own weights (3.5 GB in NF4),
// captured once in a CUDA graph and replayed; o reads qkv's output and down reads gate_up's, so the
// programmatic-dependent-launch ordering is exercised, and the graph's outputs are compared bit
// for bit with the same launches run one at a time with a synchronization after each. Run the
// binary twice, with and without NIBBLE_NO_PDL=1, for the PDL A/B (the switch is per process).
#include "gemv_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "gemv_shapes.h"
#include "ops/cuda/gemv_w4.h"
#include "ops/cuda/w4_compose.h"
#include "quant/nf4.h"

using namespace nibble;
using namespace nibble::cuda;

namespace {

#define CK(expr)                                                                         \
  do {                                                                                   \
    cudaError_t e_ = (expr);                                                             \
    if (e_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)
#define OK(expr)                                                                         \
  do {                                                                                   \
    ::nibble::Status s_ = (expr);                                                        \
    if (!s_.is_ok()) {                                                                   \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, s_.message().c_str());      \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

using Shape = GemvShape;
constexpr const auto& kShapes = kGemvShapes;

uint64_t g_rng = 0x9E3779B97F4A7C15ull;
uint64_t next_rand() {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}
void fill_random(std::vector<uint8_t>& v) {
  size_t i = 0;
  for (; i + 8 <= v.size(); i += 8) {
    const uint64_t r = next_rand();
    std::memcpy(v.data() + i, &r, 8);
  }
  for (; i < v.size(); ++i) v[i] = static_cast<uint8_t>(next_rand());
}

// A weight in the GEMV layout with random codes and valid random scales (timing does not
// depend on the values; the tests check correctness against the canonical formats). NF4 is
// double-quantized, then put in the absmax form `nf4` names, as the engine does.
W4Packed random_weight(W4Format f, int64_t n, int64_t k, Nf4Absmax nf4) {
  W4Packed w;
  w.format = f;
  w.n = n;
  w.k = k;
  const int64_t n16 = w4_n16(n), ku = k / 64;
  w.q.resize(static_cast<size_t>(n16 * ku * 512));
  fill_random(w.q);
  auto rnd_float = [](float lo, float hi) { return lo + (hi - lo) * static_cast<float>(next_rand() % 1000000) / 1e6f; };
  switch (f) {
    case W4Format::kNf4: {  // double-quantized, as checkpoints ship it (bnb_4bit_use_double_quant)
      w.flags = kW4DoubleQuant;
      const auto& code = quant::bnb4_code(quant::Bnb4Type::kNf4);
      std::copy(code.begin(), code.end(), w.code.begin());
      w.scales.resize(static_cast<size_t>(n16 * ku * 8 * 2));
      fill_random(w.scales);
      const int64_t nb = n * ku;
      w.nested.resize(static_cast<size_t>((n16 * 16 * ku + 255) / 256));
      for (auto& x : w.nested) x = rnd_float(0.01f, 0.03f);
      const auto& dm = quant::dynamic_map_signed();
      w.dmap.assign(dm.begin(), dm.end());
      w.dq = W4DqParts::single(0.02f);
      w.stream_bytes = static_cast<size_t>(n * k / 2 + nb + (nb + 255) / 256 * 4);
      break;
    }
    case W4Format::kInt4: {  // symmetric, bf16 scales
      for (int c = 0; c < 16; ++c) w.code[c] = static_cast<float>(c - 8);
      const int64_t ng = k / 128;
      w.scales.resize(static_cast<size_t>(n16 * ng * 8 * 4));
      for (size_t i = 0; i < w.scales.size() / 2; ++i) {
        const uint16_t b = f32_to_bf16(rnd_float(0.001f, 0.01f));
        std::memcpy(w.scales.data() + 2 * i, &b, 2);
      }
      w.stream_bytes = static_cast<size_t>(n * k / 2 + n * ng * 2);
      break;
    }
    case W4Format::kMxfp4: {
      static const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
      std::copy(e2m1, e2m1 + 16, w.code.begin());
      w.scales.resize(static_cast<size_t>(n16 * ku * 8 * 4));
      for (auto& b : w.scales) b = static_cast<uint8_t>(118 + next_rand() % 6);
      w.stream_bytes = static_cast<size_t>(n * k / 2 + n * (k / 32));
      break;
    }
  }
  if (nf4 != Nf4Absmax::kNested && f == W4Format::kNf4) {
    auto wide = w4_widen_nested(w);
    OK(wide.status());
    w = std::move(wide.value());
    if (nf4 == Nf4Absmax::kFp16) OK(w4_narrow_absmax(w));
  }
  return w;
}

// A second device copy of a weight (new addresses, same bytes) by device-to-device copies.
W4Device clone(const W4Device& a, Stream& s) {
  W4Device d;
  d.format = a.format;
  d.n = a.n;
  d.k = a.k;
  d.flags = a.flags;
  d.code = a.code;
  d.dq = a.dq;
  d.stream_bytes = a.stream_bytes;
  auto cp = [&](const auto& src, auto& dst) {
    if (!src.size()) return;
    auto b = std::remove_reference_t<decltype(dst)>::create(s, src.size());
    OK(b.status());
    dst = std::move(b.value());
    CK(cudaMemcpyAsync(dst.get(), src.get(), src.bytes(), cudaMemcpyDeviceToDevice, s.get()));
  };
  cp(a.q, d.q);
  cp(a.scales, d.scales);
  cp(a.zeros, d.zeros);
  cp(a.nested, d.nested);
  cp(a.dmap, d.dmap);
  return d;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Device-to-device copy bandwidth, bytes read + written, TB/s.
double copy_bandwidth(Stream& s) {
  const size_t n = size_t{1} << 30;
  auto a = DeviceBuffer<uint8_t>::create(s, n);
  auto b = DeviceBuffer<uint8_t>::create(s, n);
  OK(a.status());
  OK(b.status());
  CK(cudaMemsetAsync(a.value().get(), 1, n, s.get()));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<double> ts;
  for (int i = 0; i < 23; ++i) {
    CK(cudaEventRecord(e0, s.get()));
    CK(cudaMemcpyAsync(b.value().get(), a.value().get(), n, cudaMemcpyDeviceToDevice, s.get()));
    CK(cudaEventRecord(e1, s.get()));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    if (i >= 3) ts.push_back(ms);
  }
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  return 2.0 * n / (median(ts) * 1e-3) / 1e12;
}

// Median per-launch time (us) of gemv over rotating weight copies.
double time_gemv(std::vector<W4Device>& ws, const uint16_t* x, int m, uint16_t* y, Stream& s, int config, int batches) {
  const int per_batch = std::max<int>(8, static_cast<int>(ws.size()));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (int i = 0; i < 3; ++i) OK(gemv_w4(ws[i % ws.size()], x, m, y, s, config));
  std::vector<double> ts;
  size_t r = 0;
  for (int b = 0; b < batches; ++b) {
    // The GPU sleeps while the host enqueues the batch, so the events time the kernels back to
    // back rather than the host's launch rate (a small GEMV is as short as a launch).
    OK(gpu_sleep(s, 200.0 + 10.0 * per_batch));
    CK(cudaEventRecord(e0, s.get()));
    for (int i = 0; i < per_batch; ++i) OK(gemv_w4(ws[r++ % ws.size()], x, m, y, s, config));
    CK(cudaEventRecord(e1, s.get()));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    ts.push_back(ms * 1e3 / per_batch);
  }
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  return median(ts);
}

// Median per-call time (us) of w4_dequant_bf16 over the rotating weight copies into one output.
double time_dequant(std::vector<W4Device>& ws, uint16_t* out, Stream& s, int batches) {
  const int per_batch = std::max<int>(4, std::min<int>(16, static_cast<int>(ws.size())));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (int i = 0; i < 2; ++i) OK(w4_dequant_bf16(ws[i % ws.size()], out, s));
  std::vector<double> ts;
  size_t r = 0;
  for (int b = 0; b < batches; ++b) {
    OK(gpu_sleep(s, 200.0 + 10.0 * per_batch));
    CK(cudaEventRecord(e0, s.get()));
    for (int i = 0; i < per_batch; ++i) OK(w4_dequant_bf16(ws[r++ % ws.size()], out, s));
    CK(cudaEventRecord(e1, s.get()));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    ts.push_back(ms * 1e3 / per_batch);
  }
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  return median(ts);
}

// ||y - ref|| / ||ref|| over the first and last rows, ref from the packed layout on the CPU.
double check(const W4Packed& w, const std::vector<uint16_t>& xh, const std::vector<uint16_t>& yh, int m) {
  double num = 0, den = 0;
  std::vector<float> row(w.k);
  for (int64_t r : {int64_t{0}, int64_t{1}, int64_t{17}, w.n / 2, w.n - 1}) {
    for (int64_t c = 0; c < w.k; ++c) row[c] = w4_packed_value(w, r, c);
    for (int i = 0; i < m; ++i) {
      double ref = 0;
      for (int64_t c = 0; c < w.k; ++c) ref += static_cast<double>(bf16_to_f32(xh[i * w.k + c])) * row[c];
      const double got = bf16_to_f32(yh[i * w.n + r]);
      if (!std::isfinite(got)) return INFINITY;
      num += (got - ref) * (got - ref);
      den += ref * ref;
    }
  }
  return std::sqrt(num / den);
}

// ---- the decode-step chain -------------------------------------------------------------------

struct ChainGemv {
  W4Device w;
  const uint16_t* x;  // [m, k]
  uint16_t* y;        // [m, n]
};

Status run_chain_eager(std::vector<ChainGemv>& g, int m, Stream& s, int config, bool sync_each) {
  for (auto& c : g) {
    NB_TRY(gemv_w4(c.w, c.x, m, c.y, s, config));
    if (sync_each) NB_TRY(s.sync());
  }
  return Status::ok();
}

// The v3 defaults (before L2 prefetch and register decode), per format, for M <= 8 and M <= 32.
int v3_default(W4Format f, int m) {
  if (m > 16) return 15;
  if (m > 8) return f == W4Format::kInt4 ? 13 : 14;
  return f == W4Format::kInt4 ? 0 : 2;
}

nlohmann::json run_chain(Stream& s, const DeviceInfo& dev, double bw, const std::string& only_format, int only_m,
                         bool quick, const std::vector<int>& extra_configs, Nf4Absmax nf4) {
  struct LayerShape {
    const char* name;
    int64_t n, k;
  };
  const LayerShape shapes[] = {{"qkv", 4096 + 2 * 1024, 4096}, {"o", 4096, 4096}, {"gate_up", 2 * 14336, 4096},
                               {"down", 4096, 14336}};
  constexpr int kLayers = 32;
  const char* no_pdl = std::getenv("NIBBLE_NO_PDL");
  const bool pdl = no_pdl == nullptr && dev.cc_major >= 9;
  nlohmann::json out = nlohmann::json::array();
  const W4Format formats[] = {W4Format::kNf4, W4Format::kInt4, W4Format::kMxfp4};
  for (W4Format f : formats) {
    if (!only_format.empty() && only_format != w4_format_name(f)) continue;
    std::vector<W4Device> base;
    size_t weight_bytes = 0;
    for (const auto& sh : shapes) {
      const W4Packed host = random_weight(f, sh.n, sh.k, nf4);
      auto d = upload(host, s);
      OK(d.status());
      base.push_back(std::move(d.value()));
      weight_bytes += host.stream_bytes;
    }
    for (int m : {1, 8}) {
      if (only_m && m != only_m) continue;
      // activations: x [m, 14336] for every layer's qkv and gate_up; each GEMV its own output
      size_t y_elems = 0;
      for (const auto& sh : shapes) y_elems += static_cast<size_t>(m) * sh.n;
      auto xb = DeviceBuffer<uint16_t>::create(s, static_cast<size_t>(m) * 14336);
      auto yb = DeviceBuffer<uint16_t>::create(s, y_elems * kLayers);
      OK(xb.status());
      OK(yb.status());
      std::vector<uint16_t> xh(static_cast<size_t>(m) * 14336);
      for (auto& v : xh) v = f32_to_bf16(static_cast<float>(static_cast<int64_t>(next_rand() % 2001) - 1000) / 1000.0f);
      OK(s.upload(xb.value().get(), xh.data(), xh.size() * 2));
      std::vector<ChainGemv> chain;
      uint16_t* yp = yb.value().get();
      for (int l = 0; l < kLayers; ++l) {
        uint16_t* ys[4];
        for (int i = 0; i < 4; ++i) {
          ys[i] = yp;
          yp += static_cast<size_t>(m) * shapes[i].n;
        }
        const uint16_t* xs[4] = {xb.value().get(), ys[0], xb.value().get(), ys[2]};  // o <- qkv, down <- gate_up
        for (int i = 0; i < 4; ++i) chain.push_back({clone(base[i], s), xs[i], ys[i]});
      }
      OK(s.sync());
      double bytes = 0;
      for (const auto& sh : shapes) bytes += 2.0 * m * sh.k + 2.0 * m * sh.n;
      bytes = bytes * kLayers + static_cast<double>(weight_bytes) * kLayers;
      const double floor_us = bytes / (bw * 1e12) * 1e6;
      // variants: the op's default, the v3 default, then --chain-configs (each for all four GEMVs)
      std::vector<int> variants = {-1, v3_default(f, m)};
      for (int c : extra_configs)
        if (gemv_config_fits(c, m)) variants.push_back(c);
      for (size_t vi = 0; vi < variants.size(); ++vi) {
        const int variant = vi == 0 ? 0 : 1;
        const int config = variants[vi];
        const int shown = variant == 0 ? gemv_default_config(dev, f, m, 4096, 4096, base[0].flags) : config;
        // reference: one launch at a time
        OK(run_chain_eager(chain, m, s, config, true));
        std::vector<uint16_t> ref(y_elems * kLayers), got(y_elems * kLayers);
        OK(s.download(ref.data(), yb.value().get(), ref.size() * 2));
        OK(s.memset(yb.value().get(), 0xFF, ref.size() * 2));
        OK(s.sync());
        cudaGraph_t graph;
        cudaGraphExec_t exec;
        CK(cudaStreamBeginCapture(s.get(), cudaStreamCaptureModeThreadLocal));
        const Status cs = run_chain_eager(chain, m, s, config, false);
        CK(cudaStreamEndCapture(s.get(), &graph));
        OK(cs);
        CK(cudaGraphInstantiate(&exec, graph, 0));
        CK(cudaGraphLaunch(exec, s.get()));
        OK(s.download(got.data(), yb.value().get(), got.size() * 2));
        size_t diff = 0;
        for (size_t i = 0; i < ref.size(); ++i) diff += ref[i] != got[i];
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0));
        CK(cudaEventCreate(&e1));
        for (int i = 0; i < 3; ++i) CK(cudaGraphLaunch(exec, s.get()));
        std::vector<double> ts;
        for (int i = 0; i < (quick ? 9 : 25); ++i) {
          CK(cudaEventRecord(e0, s.get()));
          CK(cudaGraphLaunch(exec, s.get()));
          CK(cudaEventRecord(e1, s.get()));
          CK(cudaEventSynchronize(e1));
          float ms = 0;
          CK(cudaEventElapsedTime(&ms, e0, e1));
          ts.push_back(ms * 1e3);
        }
        // the same launches eagerly (no graph), back to back
        std::vector<double> te;
        for (int i = 0; i < (quick ? 5 : 11); ++i) {
          OK(gpu_sleep(s, 3000.0));
          CK(cudaEventRecord(e0, s.get()));
          OK(run_chain_eager(chain, m, s, config, false));
          CK(cudaEventRecord(e1, s.get()));
          CK(cudaEventSynchronize(e1));
          float ms = 0;
          CK(cudaEventElapsedTime(&ms, e0, e1));
          te.push_back(ms * 1e3);
        }
        CK(cudaEventDestroy(e0));
        CK(cudaEventDestroy(e1));
        CK(cudaGraphExecDestroy(exec));
        CK(cudaGraphDestroy(graph));
        const double t = median(ts), t_eager = median(te);
        std::printf("chain llama8b 4 GEMVs x %d layers %-5s M=%d %-7s %-24s pdl %-3s  graph %8.1f us (%.3f of floor %.1f us)  "
                    "eager %8.1f us  outputs %s\n",
                    kLayers, w4_format_name(f), m, vi == 0 ? "default" : vi == 1 ? "v3" : "config", gemv_config_name(shown).c_str(),
                    pdl ? "on" : "off", t, floor_us / t, floor_us, t_eager,
                    diff == 0 ? "identical to one-at-a-time" : fmt::format("DIFFER in {} of {}", diff, ref.size()).c_str());
        std::fflush(stdout);
        out.push_back({{"format", w4_format_name(f)}, {"M", m}, {"variant", vi == 0 ? "default" : vi == 1 ? "v3_default" : "config"},
                       {"trigger", std::getenv("NIBBLE_GEMV_PDL_TRIGGER") ? std::getenv("NIBBLE_GEMV_PDL_TRIGGER") : "default"},
                       {"config", variant == 0 ? "per-layer default" : gemv_config_name(config)},
                       {"pdl", pdl}, {"graph_us", t}, {"eager_us", t_eager}, {"floor_us", floor_us},
                       {"frac_of_floor", floor_us / t}, {"bytes", bytes}, {"mismatches", diff}, {"layers", kLayers}});
      }
      chain.clear();
      OK(s.sync());
    }
  }
  return out;
}

}  // namespace

int gemv_bench_main(int argc, char** argv) {
  std::string out_path, anchors_path, llamacpp_path;
  std::string only_shape, only_format;
  int only_m = 0, only_config = -1;
  bool quick = false, dequant = true, chain = false, chain_only = false;
  Nf4Absmax nf4 = Nf4Absmax::kFp16;
  std::vector<int> config_list, chain_configs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--only" && i + 1 < argc) only_shape = argv[++i];
    else if (a == "--format" && i + 1 < argc) only_format = argv[++i];
    else if (a == "--m" && i + 1 < argc) only_m = std::atoi(argv[++i]);
    else if (a == "--config" && i + 1 < argc) only_config = std::atoi(argv[++i]);
    else if (a == "--out" && i + 1 < argc) out_path = argv[++i];
    else if (a == "--anchors" && i + 1 < argc) anchors_path = argv[++i];
    else if (a == "--llamacpp-anchors" && i + 1 < argc) llamacpp_path = argv[++i];
    else if (a == "--quick") quick = true;
    else if (a == "--nf4-scales" && i + 1 < argc) {
      const std::string v = argv[++i];
      if (v != "fp16" && v != "fp32" && v != "dq") {
        std::fprintf(stderr, "--nf4-scales must be fp16, fp32 or dq, got %s\n", v.c_str());
        return 2;
      }
      nf4 = v == "fp16" ? Nf4Absmax::kFp16 : v == "fp32" ? Nf4Absmax::kFp32 : Nf4Absmax::kNested;
    }
    else if (a == "--no-dequant") dequant = false;
    else if (a == "--chain") chain = true;
    else if (a == "--chain-only") chain = chain_only = true;
    else if ((a == "--configs" || a == "--chain-configs") && i + 1 < argc) {
      auto& list = a == "--configs" ? config_list : chain_configs;
      for (const char* c = argv[++i]; *c;) {
        list.push_back(std::atoi(c));
        while (*c && *c != ',') ++c;
        if (*c == ',') ++c;
      }
    }
    else {
      std::fprintf(stderr, "usage: %s [--out FILE.json] [--anchors FILE.json] [--llamacpp-anchors FILE.json] [--quick] [--only SHAPE] "
                   "[--format F] [--m M] [--config I] [--configs I,J] [--no-dequant] [--chain|--chain-only] [--nf4-scales fp16|fp32|dq]\n", argv[0]);
      return 2;
    }
  }
  if (device_count() == 0) {
    std::fprintf(stderr, "nibble_gemv_bench: no CUDA device\n");
    return 1;
  }
  auto pool_r = DevicePool::create(0);
  OK(pool_r.status());
  auto& pool = *pool_r.value();
  auto stream_r = Stream::create(pool);
  OK(stream_r.status());
  Stream& s = *stream_r.value();
  const DeviceInfo& dev = pool.info();

  // Anchors measured in this session by bench/gemv_anchors.py: key "shape|M" -> us.
  std::map<std::string, double> bnb_us, cublas_us;
  std::string anchor_note = "none";
  if (!anchors_path.empty()) {
    std::ifstream f(anchors_path);
    if (f) {
      const auto j = nlohmann::json::parse(f);
      anchor_note = j.value("note", std::string("same run"));
      for (const auto& r : j["rows"]) {
        const std::string key = fmt::format("{}|{}", r["shape"].get<std::string>(), r["M"].get<int>());
        if (r.contains("bnb_us") && !r["bnb_us"].is_null()) bnb_us[key] = r["bnb_us"].get<double>();
        if (r.contains("cublas_us") && !r["cublas_us"].is_null()) cublas_us[key] = r["cublas_us"].get<double>();
      }
    } else {
      std::fprintf(stderr, "warning: no anchors file %s\n", anchors_path.c_str());
    }
  }
  // llama.cpp's MUL_MAT in this session (bench/llamacpp_mulmat.cpp): key "shape|M" -> us per ggml
  // type, the type closest to each of our formats.
  auto llamacpp_type = [](W4Format f) { return f == W4Format::kInt4 ? "q4_0" : f == W4Format::kMxfp4 ? "mxfp4" : "iq4_nl"; };
  std::map<std::string, std::map<std::string, double>> llamacpp_us;  // ggml type -> key -> us
  std::string llamacpp_note = "none";
  if (!llamacpp_path.empty()) {
    std::ifstream f(llamacpp_path);
    if (f) {
      const auto j = nlohmann::json::parse(f);
      llamacpp_note = fmt::format("{}; {}, ggml {}", j.value("note", std::string("same run")),
                                  j.value("source", std::string("llama.cpp")), j.value("ggml", std::string("?")));
      for (const auto& r : j["rows"]) {
        const std::string key = fmt::format("{}|{}", r["shape"].get<std::string>(), r["M"].get<int>());
        for (const char* t : {"q4_0", "mxfp4", "iq4_nl"})
          if (const auto us = r.value(fmt::format("{}_us", t), nlohmann::json()); us.is_number())
            llamacpp_us[t][key] = us.get<double>();
      }
    } else {
      std::fprintf(stderr, "warning: no llama.cpp anchors file %s\n", llamacpp_path.c_str());
    }
  }

  const double bw = copy_bandwidth(s);
  std::printf("device %s (sm_%d%d, %d SMs)  copy bandwidth %.3f TB/s (read+write)\n", dev.name.c_str(), dev.cc_major,
              dev.cc_minor, dev.sm_count, bw);

  nlohmann::json records = nlohmann::json::array();
  nlohmann::json dequant_records = nlohmann::json::array();
  const W4Format formats[] = {W4Format::kNf4, W4Format::kInt4, W4Format::kMxfp4};
  const int ms[] = {1, 8, 16, 32};  // 16 (the batch-16 decode step's M) only when asked for with --m 16
  const int batches = quick ? 7 : 25;
  auto x_r = DeviceBuffer<uint16_t>::create(s, 32 * 28672);
  auto y_r = DeviceBuffer<uint16_t>::create(s, 32 * 57344);
  OK(x_r.status());
  OK(y_r.status());
  std::vector<uint16_t> xh(32 * 28672);
  for (auto& v : xh) v = f32_to_bf16(static_cast<float>(static_cast<int64_t>(next_rand() % 2001) - 1000) / 1000.0f);
  OK(s.upload(x_r.value().get(), xh.data(), xh.size() * 2));

  nlohmann::json chain_records = nlohmann::json::array();
  if (chain) chain_records = run_chain(s, dev, bw, only_format, only_m, quick, chain_configs, nf4);

  for (const Shape& sh : kShapes) {
    if (chain_only) break;
    if (!only_shape.empty() && only_shape != sh.name) continue;
    for (W4Format f : formats) {
      if (!only_format.empty() && only_format != w4_format_name(f)) continue;
      const W4Packed host = random_weight(f, sh.n, sh.k, nf4);
      auto first = upload(host, s);
      OK(first.status());
      std::vector<W4Device> ws;
      ws.push_back(std::move(first.value()));
      const size_t bytes = host.stream_bytes;
      const int copies = std::max<int>(2, static_cast<int>(std::ceil(400e6 / bytes)));
      for (int c = 1; c < copies; ++c) ws.push_back(clone(ws[0], s));
      OK(s.sync());
      for (int m : ms) {
        if ((only_m && m != only_m) || (m == 16 && only_m != 16)) continue;
        // correctness of this very data at this M (a handful of rows against the CPU)
        std::vector<uint16_t> yh(static_cast<size_t>(m) * sh.n);
        OK(s.memset(y_r.value().get(), 0xFF, yh.size() * 2));
        OK(gemv_w4(ws[0], x_r.value().get(), m, y_r.value().get(), s));
        OK(s.download(yh.data(), y_r.value().get(), yh.size() * 2));
        const double err = check(host, xh, yh, m);

        const int dflt = gemv_default_config(dev, f, m, sh.n, sh.k, host.flags);
        double t_default = 0, t_best = 1e30;
        int best = dflt;
        nlohmann::json per_config = nlohmann::json::object();
        for (int c = 0; c < gemv_config_count(); ++c) {
          if (!gemv_config_fits(c, m) || (only_config >= 0 && c != only_config && c != dflt)) continue;
          if (!config_list.empty() && c != dflt && std::find(config_list.begin(), config_list.end(), c) == config_list.end())
            continue;
          const double t = time_gemv(ws, x_r.value().get(), m, y_r.value().get(), s, c, batches);
          per_config[gemv_config_name(c)] = t;
          if (c == dflt) t_default = t;
          if (t < t_best) {
            t_best = t;
            best = c;
          }
        }
        const double floor_bytes = static_cast<double>(bytes) + 2.0 * m * sh.k + 2.0 * m * sh.n;
        const double floor_us = floor_bytes / (bw * 1e12) * 1e6;
        const std::string key = fmt::format("{}|{}", sh.name, m);
        const bool nf4 = f == W4Format::kNf4;
        const auto& ll = llamacpp_us[llamacpp_type(f)];
        const bool use_ll = !nf4 && !ll.empty();  // INT4 and MXFP4 against llama.cpp when it ran
        const auto& amap = nf4 ? bnb_us : use_ll ? ll : cublas_us;
        const auto it = amap.find(key);
        nlohmann::json rec = {{"shape", sh.name},
                              {"format", w4_format_name(f)},
                              {"M", m},
                              {"N", sh.n},
                              {"K", sh.k},
                              {"us", t_default},
                              {"config", gemv_config_name(dflt)},
                              {"best_us", t_best},
                              {"best_config", gemv_config_name(best)},
                              {"floor_us", floor_us},
                              {"frac_of_floor", floor_us / t_default},
                              {"best_frac_of_floor", floor_us / t_best},
                              {"bytes", floor_bytes},
                              {"rel_err", err},
                              {"config_us", per_config},
                              {"anchor", nf4      ? "bitsandbytes nf4 (bnb.matmul_4bit)"
                                         : use_ll ? fmt::format("llama.cpp {}", llamacpp_type(f))
                                                  : "cublas bf16 (torch)"},
                              {"anchor_source", use_ll ? llamacpp_note : anchor_note}};
        if (it != amap.end()) {
          rec["anchor_us"] = it->second;
          rec["anchor_ratio"] = it->second / t_default;
        } else {
          rec["anchor_us"] = nullptr;
          rec["anchor_ratio"] = nullptr;
        }
        const auto cb = cublas_us.find(key);
        rec["cublas_bf16_us"] = cb != cublas_us.end() ? nlohmann::json(cb->second) : nlohmann::json(nullptr);
        if (const auto lt = ll.find(key); lt != ll.end()) {
          rec["llamacpp_type"] = llamacpp_type(f);
          rec["llamacpp_us"] = lt->second;
        }
        std::printf("%-19s %-5s M=%2d  %8.2f us (%-14s) best %8.2f us (%-14s)  floor %7.2f us  %.2f of floor  "
                    "err %.1e%s\n",
                    sh.name, w4_format_name(f), m, t_default, gemv_config_name(dflt).c_str(), t_best,
                    gemv_config_name(best).c_str(), floor_us, floor_us / t_default, err,
                    it != amap.end() ? fmt::format("  {:.2f}x anchor", it->second / t_default).c_str() : "");
        std::fflush(stdout);
        records.push_back(rec);
      }
      if (dequant) {
        // The prefill path's dequantization: one read of the packed weight, one bf16 write.
        auto out = DeviceBuffer<uint16_t>::create(s, static_cast<size_t>(sh.n * sh.k));
        OK(out.status());
        const double t = time_dequant(ws, out.value().get(), s, quick ? 5 : 11);
        const double moved = static_cast<double>(bytes) + 2.0 * sh.n * sh.k;
        const double tbps = moved / (t * 1e-6) / 1e12;
        std::printf("%-19s %-5s dequant_bf16 %8.2f us  %.2f TB/s = %.2f of copy\n", sh.name, w4_format_name(f), t, tbps,
                    tbps / bw);
        dequant_records.push_back({{"shape", sh.name}, {"format", w4_format_name(f)}, {"N", sh.n}, {"K", sh.k},
                                   {"us", t}, {"bytes", moved}, {"TBps", tbps}, {"frac_of_copy", tbps / bw}});
      }
      ws.clear();
      OK(s.sync());
    }
  }

  // Geometric means per (format, M): the targets.
  std::printf("\n%-6s %3s  %9s %9s %10s\n", "format", "M", "geo_frac", "best_frac", "geo_anchor");
  nlohmann::json summary = nlohmann::json::array();
  for (W4Format f : formats)
    for (int m : ms) {
      double lf = 0, lb = 0, la = 0;
      int n = 0, na = 0;
      for (const auto& r : records) {
        if (r["format"] != w4_format_name(f) || r["M"] != m) continue;
        lf += std::log(r["frac_of_floor"].get<double>());
        lb += std::log(r["best_frac_of_floor"].get<double>());
        ++n;
        if (!r["anchor_ratio"].is_null()) {
          la += std::log(r["anchor_ratio"].get<double>());
          ++na;
        }
      }
      if (n == 0) continue;
      const double gf = std::exp(lf / n), gb = std::exp(lb / n), ga = na ? std::exp(la / na) : NAN;
      std::printf("%-6s %3d  %9.3f %9.3f %10.2f\n", w4_format_name(f), m, gf, gb, ga);
      summary.push_back({{"format", w4_format_name(f)}, {"M", m}, {"geomean_frac_of_floor", gf},
                         {"geomean_best_frac_of_floor", gb}, {"geomean_anchor_ratio", na ? nlohmann::json(ga) : nlohmann::json(nullptr)}});
    }

  // Geometric mean of floor / time per (format, M, configuration): which fixed default is best.
  std::printf("\n%-6s %3s  %-16s %9s\n", "format", "M", "config", "geo_frac");
  nlohmann::json per_config_summary = nlohmann::json::array();
  for (W4Format f : formats)
    for (int m : ms)
      for (int c = 0; c < gemv_config_count(); ++c) {
        if (!gemv_config_fits(c, m)) continue;
        const std::string name = gemv_config_name(c);
        double l = 0;
        int n = 0;
        for (const auto& r : records) {
          if (r["format"] != w4_format_name(f) || r["M"] != m || !r["config_us"].contains(name)) continue;
          l += std::log(r["floor_us"].get<double>() / r["config_us"][name].get<double>());
          ++n;
        }
        if (n == 0) continue;
        std::printf("%-6s %3d  %-16s %9.3f\n", w4_format_name(f), m, name.c_str(), std::exp(l / n));
        per_config_summary.push_back({{"format", w4_format_name(f)}, {"M", m}, {"config", name},
                                      {"geomean_frac_of_floor", std::exp(l / n)}, {"shapes", n}});
      }

  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  nlohmann::json doc = {{"device", dev.name},
                        {"date", date},
                        {"sm_count", dev.sm_count},
                        {"copy_TBps", bw},
                        {"method", "median over batches of launches rotating >= 400 MB of weight copies; CUDA events"},
                        {"gemv", records},
                        {"summary", summary},
                        {"per_config_summary", per_config_summary},
                        {"dequant_bf16", dequant_records},
                        {"chain", chain_records},
                        {"pdl", std::getenv("NIBBLE_NO_PDL") == nullptr && dev.cc_major >= 9},
                        {"nf4_scales", nf4 == Nf4Absmax::kFp16   ? "fp16 (widened from double quantization, rounded)"
                                       : nf4 == Nf4Absmax::kFp32 ? "fp32 (widened from double quantization)"
                                                                 : "double-quantized"}};
  if (!out_path.empty()) {
    std::ofstream o(out_path);
    o << doc.dump(1) << "\n";
    std::printf("wrote %s\n", out_path.c_str());
  }
  return 0;
}

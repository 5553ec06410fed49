// Sampling on the GPU backend (CudaModel::forward_sample: the logits stay on the device,
// sample_rows picks, ids come back) for six sequences decoded together, each with its own
// top-k / top-p / min-p / repetition penalty and seeded draws, through the CUDA decode graphs:
//   - the device's pick equals the host sampler on the logits CudaModel::forward returns for the
//     same step and the same uniform draw (exact);
//   - it equals the CPU model's pick wherever no move of the logits as large as the GPU-CPU
//     difference of that row could change the CPU's pick (elsewhere counted, not compared).
// Skips, saying so, where no GPU is present.
#include <gtest/gtest.h>

#ifndef NIBBLE_HAVE_CUDA

TEST(CudaModelSampling, Skipped) { GTEST_SKIP() << "built without the CUDA backend (NIBBLE_CUDA=OFF or no nvcc)"; }

#else

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "cuda_test_skip.h"
#include "golden_util.h"
#include "model/cuda/cuda_model.h"
#include "ops/cuda/device.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

namespace nibble::cuda {
namespace {

namespace fs = std::filesystem;

// Bounds on a ratio A / (A + B) when every term of A and of B may be scaled by e^{±y}.
struct Range {
  double lo, hi;
  bool contains(double v) const { return v >= lo && v <= hi; }
};
Range ratio_range(double a, double b, double y) {
  const double up = std::exp(y), down = std::exp(-y);
  return {a * down / (a * down + b * up), a * up / (a * up + b * down)};
}

// Whether the pick of `p` with uniform u on `logits` could differ for some logits each within
// `delta` of these: the same steps as ops::sample_with_uniform, each cut and the draw checked
// against how far such a move can shift it.
bool near_tie(const SamplingParams& p, std::span<const float> logits, std::span<const int32_t> history, double u,
              double delta) {
  const int n = static_cast<int>(logits.size());
  std::vector<double> l(logits.begin(), logits.end());
  double d = delta;  // how far a penalized logit can move
  if (p.repeat_penalty != 1.0f && p.repeat_last_n != 0 && !history.empty()) {
    const size_t k = p.repeat_last_n < 0 ? history.size() : std::min<size_t>(history.size(), p.repeat_last_n);
    std::vector<bool> seen(n, false);
    for (size_t i = history.size() - k; i < history.size(); ++i) seen[history[i]] = true;
    for (int i = 0; i < n; ++i)
      if (seen[i]) l[i] = l[i] > 0 ? l[i] / p.repeat_penalty : l[i] * p.repeat_penalty;
    d *= std::max<double>(p.repeat_penalty, 1.0 / p.repeat_penalty);
  }
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return l[a] > l[b]; });
  auto gap_small = [&](int i) { return i + 1 < n && l[idx[i]] - l[idx[i + 1]] <= 2 * d; };  // i and i+1 may swap
  if (p.temperature <= 0.0f) return gap_small(0);
  const double y = d / p.temperature;  // each exp(l / T) moves by at most e^{±y}
  int keep = n;
  if (p.top_k > 0 && p.top_k < n) {
    if (gap_small(p.top_k - 1)) return true;
    keep = p.top_k;
  }
  std::vector<double> e(keep);
  for (int i = 0; i < keep; ++i) e[i] = std::exp((l[idx[i]] - l[idx[0]]) / p.temperature);
  const double total = std::accumulate(e.begin(), e.end(), 0.0);
  if (p.top_p < 1.0f) {
    double cum = 0;
    int k = 0;
    while (k < keep) {
      cum += e[k++];
      if (cum / total >= p.top_p) break;
    }
    // The cut after k tokens stays if the first k - 1 stay short of top_p and the first k reach it.
    if (k < keep && (gap_small(k - 1) || ratio_range(cum, total - cum, y).lo < p.top_p)) return true;
    if (k > 1 && (gap_small(k - 2) || ratio_range(cum - e[k - 1], total - cum + e[k - 1], y).hi >= p.top_p)) return true;
    keep = k;
  }
  if (p.min_p > 0.0f) {
    int k = 1;
    while (k < keep && e[k] / e[0] >= p.min_p) ++k;
    for (int i = 1; i < keep; ++i)  // e_i / e_0 moves by at most e^{±2y}
      if (std::abs(std::log(e[i] / e[0]) - std::log(p.min_p)) <= 2 * y) return true;
    keep = k;
  }
  // The draw: the first id (in id order) whose cumulative mass exceeds u; stable if u stays
  // clear of both ends of its interval.
  std::vector<std::pair<int, double>> kept;
  for (int i = 0; i < keep; ++i) kept.push_back({idx[i], e[i]});
  std::sort(kept.begin(), kept.end());
  const double mass = std::accumulate(kept.begin(), kept.end(), 0.0, [](double s, auto& q) { return s + q.second; });
  double before = 0;
  for (const auto& [id, w] : kept) {
    const Range lo = ratio_range(before, mass - before, y), hi = ratio_range(before + w, mass - before - w, y);
    if (lo.contains(u) || hi.contains(u)) return true;
    if (u < (before + w) / mass) return false;
    before += w;
  }
  return false;
}

class CudaModelSampling : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaModelSampling, SamplingFollowsTheCpuAndTheHostSampler) {
  SKIP_WITHOUT_GPU();
  auto cpu = Model::load(GetParam());
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().message();
  auto gpu = CudaModel::create(**cpu);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
  const Model& m = **cpu;
  const int vocab = m.config().vocab_size;
  const auto goldens = test::read_goldens(GetParam());
  ASSERT_FALSE(goldens.empty());
  // Few tokens survive the filters (the tiny models' logits are flat), so that many picks are
  // far enough from every boundary to compare; the last row is greedy with a penalty (sampled by
  // sample_rows: the batch is not all plain greedy). Simulated on the CPU with bf16-sized noise
  // on the logits (normal, sigma 0.015, several times the GPU's error), 54 to 154 of the 288
  // picks per model are compared.
  const std::vector<SamplingParams> params = {
      {.temperature = 0.5f, .top_k = 3, .repeat_penalty = 1.2f, .seed = 101},
      {.temperature = 1.0f, .top_k = 2, .seed = 102},
      {.temperature = 0.7f, .top_p = 0.03f, .min_p = 0.5f, .repeat_penalty = 1.3f, .repeat_last_n = -1, .seed = 103},
      {.temperature = 1.0f, .top_p = 0.01f, .seed = 104},
      {.temperature = 1.0f, .min_p = 0.9f, .repeat_penalty = 1.1f, .seed = 105},
      {.temperature = 0.0f, .repeat_penalty = 1.5f, .repeat_last_n = 8, .seed = 106},
  };
  const int n_seq = static_cast<int>(params.size());
  std::vector<Sampler> samplers;
  std::vector<std::vector<int32_t>> hist;
  for (int s = 0; s < n_seq; ++s) {
    samplers.emplace_back(params[s]);
    hist.push_back(goldens[s % goldens.size()].tokens);
  }
  auto kc = m.make_kv_cache(2048);
  auto kg = (*gpu)->make_kv_cache(2048);
  ASSERT_TRUE(kc.is_ok() && kg.is_ok());
  std::vector<BlockTable> tc(n_seq), tg(n_seq);
  int compared = 0, near_ties = 0;
  for (int step = 0; step < 48; ++step) {
    ForwardBatch bc, bg;
    for (int s = 0; s < n_seq; ++s) {
      std::span<const int32_t> toks(hist[s]);
      if (step > 0) toks = toks.last(1);
      ASSERT_TRUE((*kc)->reserve(tc[s], tc[s].n_tokens + static_cast<int>(toks.size())).is_ok());
      ASSERT_TRUE((*kg)->reserve(tg[s], tg[s].n_tokens + static_cast<int>(toks.size())).is_ok());
      bc.add(toks, tc[s].n_tokens, tc[s], 16, false);
      bg.add(toks, tg[s].n_tokens, tg[s], 16, false);
    }
    std::vector<SampleRequest> rows;
    for (int s = 0; s < n_seq; ++s) rows.push_back({params[s], hist[s], samplers[s].draw()});
    std::vector<float> lc, lg;
    std::vector<int32_t> picked;
    ASSERT_TRUE(m.forward(bc, **kc, lc).is_ok());
    auto st = (*gpu)->forward(bg, **kg, lg);
    ASSERT_TRUE(st.is_ok()) << st.message();
    // The same step again, sampling on the device (it rewrites the same K/V into the same slots).
    st = (*gpu)->forward_sample(bg, **kg, rows, picked);
    ASSERT_TRUE(st.is_ok()) << st.message();
    ASSERT_EQ(picked.size(), static_cast<size_t>(n_seq));
    for (int s = 0; s < n_seq; ++s) {
      const int n = step == 0 ? static_cast<int>(hist[s].size()) : 1;
      tc[s].n_tokens += n;
      tg[s].n_tokens += n;
      const std::span<const float> rc(lc.data() + static_cast<size_t>(s) * vocab, vocab);
      const std::span<const float> rg(lg.data() + static_cast<size_t>(s) * vocab, vocab);
      const int32_t host_on_gpu_logits = ops::sample_with_uniform(params[s], rg, hist[s], rows[s].u);
      EXPECT_EQ(picked[s], host_on_gpu_logits) << "device vs host sampling, sequence " << s << " step " << step;
      const int32_t want = ops::sample_with_uniform(params[s], rc, hist[s], rows[s].u);
      float max_diff = 0;
      for (int i = 0; i < vocab; ++i) max_diff = std::max(max_diff, std::abs(rc[i] - rg[i]));
      if (!near_tie(params[s], rc, hist[s], rows[s].u, max_diff)) {
        EXPECT_EQ(picked[s], want) << "sequence " << s << " step " << step;
        ++compared;
      } else {
        ++near_ties;
      }
      hist[s].push_back(want);  // both follow the CPU's choice
    }
  }
  RecordProperty("compared_tokens", compared);
  RecordProperty("near_ties", near_ties);
  std::printf("[ sampling ] %s: %d picks compared with the CPU, %d near ties\n",
              fs::path(GetParam()).filename().c_str(), compared, near_ties);
  EXPECT_GE(compared, 32) << "too many near-ties (" << near_ties << ") to say anything";
}

// A seeded Session on the GPU (sampling inside the decode graphs) runs end to end, and two runs
// with the same seed give the same tokens (the device picks deterministically from u).
TEST_P(CudaModelSampling, SeededSessionIsReproducible) {
  SKIP_WITHOUT_GPU();
  auto cpu = Model::load(GetParam());
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().message();
  auto gpu = CudaModel::create(**cpu);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
  const auto goldens = test::read_goldens(GetParam());
  GenerateOptions o;
  o.max_new_tokens = 24;
  o.stop_at_eos = false;
  o.sampling = {.temperature = 0.9f, .top_k = 50, .top_p = 0.9f, .min_p = 0.05f, .repeat_penalty = 1.1f, .seed = 5};
  std::vector<int32_t> first;
  for (int run = 0; run < 2; ++run) {
    Session session(**gpu, 512);
    auto r = session.generate(goldens[0].tokens, o);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    ASSERT_EQ(r->tokens.size(), 24u);
    for (int32_t t : r->tokens) ASSERT_TRUE(t >= 0 && t < (*gpu)->config().vocab_size);
    if (run == 0)
      first = r->tokens;
    else
      EXPECT_EQ(r->tokens, first);
  }
  // A draw outside [0, 1) is refused, and the model stays usable.
  auto kv = (*gpu)->make_kv_cache(64);
  ASSERT_TRUE(kv.is_ok());
  BlockTable t;
  ASSERT_TRUE((*kv)->reserve(t, 3).is_ok());
  ForwardBatch b;
  const std::vector<int32_t> toks = {1, 2, 3};
  b.add(toks, 0, t, 16, false);
  std::vector<int32_t> out;
  const SampleRequest bad{{.temperature = 1.0f}, {}, 1.5};
  EXPECT_FALSE((*gpu)->forward_sample(b, **kv, std::span(&bad, 1), out).is_ok());
  const SampleRequest good{{.temperature = 1.0f}, {}, 0.5};
  EXPECT_TRUE((*gpu)->forward_sample(b, **kv, std::span(&good, 1), out).is_ok());
}

std::string name_of(const ::testing::TestParamInfo<std::string>& info) { return fs::path(info.param).filename().string(); }
INSTANTIATE_TEST_SUITE_P(Models, CudaModelSampling, ::testing::ValuesIn(test::golden_model_dirs()), name_of);

}  // namespace
}  // namespace nibble::cuda

#endif

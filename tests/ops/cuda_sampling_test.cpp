// GPU sampling (src/ops/cuda/sampling.cu) against the CPU sampler itself (src/runtime/sampler.cpp):
// for every row, the uniform is the first draw the CPU Sampler makes from its seed, so the GPU must
// pick exactly the token Sampler::sample returns. Random logits, some rounded to bf16 so that many
// tokens tie; histories with repeats; every filter alone and combined; vocab up to 262144.
#include <gtest/gtest.h>

#ifndef NIBBLE_HAVE_CUDA

TEST(CudaSampling, Skipped) { GTEST_SKIP() << "built without the CUDA backend (NIBBLE_CUDA=OFF or no nvcc)"; }

#else

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <span>
#include <unordered_set>
#include <vector>

#include "cuda_test_util.h"
#include "op_test_util.h"
#include "ops/cuda/sampling.h"
#include "runtime/sampler.h"

namespace nibble::cuda {
namespace {

using op_test::randn;
using op_test::rng;
using namespace test;
using CpuParams = ::nibble::SamplingParams;
using CpuSampler = ::nibble::Sampler;

struct Row {
  CpuParams p;
  float logit_scale = 1.0f;
  bool bf16_ties = false;
  int history = 0;
};

// The blocks-a-row settings: automatic, one block, and clusters of 2, 8 and 16 (sm_90; a setting
// the device cannot run is refused as unsupported and skipped by the callers).
std::vector<int> blocks_per_row_settings(const Stream& st) {
  if (st.info().cc_major >= 9) return {0, 1, 2, 8, 16};
  return {0, 1};
}

// Runs all rows in one launch per blocks-a-row setting; returns the number of (setting, row) pairs
// where GPU and CPU disagree.
int run_rows(Stream& st, int vocab, const std::vector<Row>& rows) {
  const int n = static_cast<int>(rows.size());
  std::vector<float> logits(static_cast<size_t>(n) * vocab);
  std::vector<int32_t> hist, offs{0};
  std::vector<SampleRowParams> gp;
  std::vector<double> u;
  std::vector<int32_t> want;
  std::uniform_int_distribution<int> tok(0, vocab - 1);
  for (int r = 0; r < n; ++r) {
    const Row& row = rows[r];
    auto l = randn(vocab, row.logit_scale);
    if (row.bf16_ties)
      for (auto& v : l) v = bf16_to_f32(f32_to_bf16(v));
    // A few very negative and -inf logits (masked tokens).
    for (int i = 0; i < 3; ++i) l[tok(rng())] = -INFINITY;
    std::copy(l.begin(), l.end(), logits.begin() + static_cast<size_t>(r) * vocab);
    std::vector<int32_t> h;
    for (int i = 0; i < row.history; ++i) h.push_back(i % 3 == 0 && !h.empty() ? h[tok(rng()) % h.size()] : tok(rng()));
    hist.insert(hist.end(), h.begin(), h.end());
    offs.push_back(static_cast<int32_t>(hist.size()));
    CpuParams p = row.p;
    p.seed = 1000 + r * 7919 + vocab;
    std::mt19937_64 g(p.seed);
    u.push_back(std::uniform_real_distribution<double>(0.0, 1.0)(g));  // Sampler's first draw
    CpuSampler s(p);
    want.push_back(s.sample(l, h));
    gp.push_back({p.temperature, p.top_k, p.top_p, p.min_p, p.repeat_penalty, p.repeat_last_n});
  }
  auto dl = to_device(st, logits);
  auto dh = to_device(st, hist.empty() ? std::vector<int32_t>{0} : hist);
  auto doff = to_device(st, offs);
  auto dp = to_device(st, gp);
  auto du = to_device(st, u);
  int bad = 0;
  for (int bpr : blocks_per_row_settings(st)) {
    auto dout = to_device(st, std::vector<int32_t>(n, -7));
    const Status s = sample_rows(dl.get(), n, vocab, dp.get(), dh.get(), doff.get(), du.get(), dout.get(), st, bpr);
    if (bpr == 16 && s.code() == StatusCode::kUnsupported) {  // not every sm_90 part fits 16 one-block SMs in a GPC
      std::printf("  vocab %d: clusters of 16 not supported here (%s)\n", vocab, s.message().c_str());
      continue;
    }
    EXPECT_TRUE(s.is_ok()) << s.message();
    const auto got = to_host(st, dout);
    for (int r = 0; r < n; ++r)
      if (got[r] != want[r]) {
        ++bad;
        const auto& p = rows[r].p;
        ADD_FAILURE() << "vocab " << vocab << " blocks a row " << bpr << " row " << r << ": gpu " << got[r] << " cpu "
                      << want[r] << " (T " << p.temperature << " top_k " << p.top_k << " top_p " << p.top_p
                      << " min_p " << p.min_p << " penalty " << p.repeat_penalty << "/" << p.repeat_last_n << " u "
                      << u[r] << ")";
      }
  }
  return bad;
}

CpuParams params(float t, int k = 0, float top_p = 1.0f, float min_p = 0.0f, float pen = 1.0f, int last_n = 64) {
  CpuParams p;
  p.temperature = t;
  p.top_k = k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.repeat_penalty = pen;
  p.repeat_last_n = last_n;
  return p;
}

std::vector<Row> all_kinds_of_rows() {
  std::vector<Row> rows;
  for (bool ties : {false, true})
    for (float scale : {1.0f, 4.0f}) {
      auto add = [&](CpuParams p, int history = 0) { rows.push_back({p, scale, ties, history}); };
      add(params(0.0f));                            // greedy
      add(params(0.0f, 0, 1, 0, 1.3f), 50);         // greedy after the penalty
      add(params(1.0f));                            // plain softmax draw
      add(params(0.7f));
      add(params(1.0f, 1));                         // top-k 1
      add(params(0.8f, 40));
      add(params(1.0f, 1000));
      add(params(1.0f, 0, 0.9f));                   // top-p
      add(params(0.6f, 0, 0.5f));
      add(params(1.0f, 0, 0.999f));
      add(params(1.2f, 0, 0.05f));
      add(params(1.0f, 0, 1.0f, 0.05f));            // min-p
      add(params(1.0f, 0, 1.0f, 0.3f));
      add(params(0.9f, 50, 0.95f, 0.02f));          // everything
      add(params(0.9f, 50, 0.95f, 0.02f, 1.2f), 100);
      add(params(1.0f, 0, 0.9f, 0.0f, 1.5f, -1), 300);
      add(params(1.0f, 0, 1.0f, 0.0f, 1.1f, 10), 40);
      add(params(1.0f, 0, 1.0f, 0.0f, 1.1f, 0), 40);  // last_n 0: no penalty
    }
  return rows;
}

TEST(CudaSampling, MatchesCpuSampler) {
  NB_REQUIRE_GPU();
  for (int vocab : {1, 17, 1000, 32017, 151936}) {  // 1 and 17: most blocks of a cluster have no ids
    const int bad = run_rows(st, vocab, all_kinds_of_rows());
    std::printf("  vocab %6d: %d (setting, row) pairs differ\n", vocab, bad);
  }
}

TEST(CudaSampling, LargeVocabRepeatedDraws) {
  NB_REQUIRE_GPU();
  // Many draws of the same kinds of rows at vocab 262144 (Gemma 3): different u each time.
  std::vector<Row> rows;
  for (int i = 0; i < 24; ++i) {
    rows.push_back({params(1.0f, 0, 0.9f), 1.0f, i % 2 == 1, 0});
    rows.push_back({params(0.7f, 40, 0.95f, 0.05f, 1.1f), 3.0f, i % 2 == 0, 64});
  }
  const int bad = run_rows(st, 262144, rows);
  std::printf("  vocab 262144: %d of %zu rows differ\n", bad, rows.size());
}

TEST(CudaSampling, ArgmaxRows) {
  NB_REQUIRE_GPU();
  for (int vocab : {1, 17, 1000, 128256}) {
    const int n = 9;
    std::vector<float> l(static_cast<size_t>(n) * vocab);
    std::vector<int32_t> want(n);
    for (int r = 0; r < n; ++r) {
      auto x = randn(vocab, 2.0f);
      if (r % 2)
        for (auto& v : x) v = std::round(v);  // many ties: the lowest id must win
      if (r == 0) std::fill(x.begin(), x.end(), -INFINITY);
      std::copy(x.begin(), x.end(), l.begin() + static_cast<size_t>(r) * vocab);
      want[r] = static_cast<int32_t>(std::max_element(x.begin(), x.end()) - x.begin());
    }
    auto dl = to_device(st, l);
    auto out = to_device(st, std::vector<int32_t>(n, -7));
    ASSERT_TRUE(argmax_rows(dl.get(), n, vocab, out.get(), st).is_ok());
    EXPECT_EQ(to_host(st, out), want) << "vocab " << vocab;
  }
}

// Not a test: time per call at Llama-3 vocab. --gtest_also_run_disabled_tests --gtest_filter='*Bench*'
TEST(CudaSampling, DISABLED_Bench) {
  NB_REQUIRE_GPU();
  const int vocab = 128256;
  for (int n : {1, 8, 16, 64}) {
    auto dl = to_device(st, randn(static_cast<size_t>(n) * vocab, 2.0f));
    auto du = to_device(st, std::vector<double>(n, 0.5));
    auto out = to_device(st, std::vector<int32_t>(n));
    std::vector<int32_t> hist(64 * n), offs(n + 1);
    for (int r = 0; r <= n; ++r) offs[r] = 64 * r;
    for (auto& h : hist) h = static_cast<int32_t>(rng()() % vocab);
    auto dh = to_device(st, hist);
    auto doff = to_device(st, offs);
    struct Named {
      const char* name;
      SampleRowParams p;
    };
    for (const Named& c : {Named{"T0.7", {0.7f, 0, 1.0f, 0.0f, 1.0f, 64}}, Named{"top_k40", {0.7f, 40, 1.0f, 0.0f, 1.0f, 64}},
                           Named{"top_p0.9", {0.7f, 0, 0.9f, 0.0f, 1.0f, 64}},
                           Named{"k40 p0.95 minp0.05 pen1.1", {0.7f, 40, 0.95f, 0.05f, 1.1f, 64}}}) {
      auto dp = to_device(st, std::vector<SampleRowParams>(n, c.p));
      for (int bpr : blocks_per_row_settings(st)) {
        auto run = [&] {
          return sample_rows(dl.get(), n, vocab, dp.get(), dh.get(), doff.get(), du.get(), out.get(), st, bpr);
        };
        if (bpr == 16 && run().code() == StatusCode::kUnsupported) continue;
        ASSERT_TRUE(run().is_ok());
        std::printf("BENCH sample_rows vocab %d rows %d %-26s blocks a row %d (0 = auto) %.1f us\n", vocab, n, c.name, bpr,
                    median_ms(st, run, 11) * 1e3);
      }
    }
    const double argmax_ms = median_ms(st, [&] { return argmax_rows(dl.get(), n, vocab, out.get(), st); }, 21);
    std::printf("BENCH argmax_rows vocab %d rows %d %.1f us\n", vocab, n, argmax_ms * 1e3);
  }
}

}  // namespace
}  // namespace nibble::cuda

#endif  // NIBBLE_HAVE_CUDA

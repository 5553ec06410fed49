// Sampling on fixed logits: which tokens stay eligible, and the distribution over many draws.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "runtime/sampler.h"

namespace nibble {
namespace {

// log-probabilities of 0.4, 0.3, 0.15, 0.1, 0.05 in a shuffled order of ids.
const std::vector<float> kLogits = {std::log(0.15f), std::log(0.4f), std::log(0.05f), std::log(0.3f), std::log(0.1f)};
// ids by probability: 1 (0.4), 3 (0.3), 0 (0.15), 4 (0.1), 2 (0.05)

std::vector<int> eligible(const SamplingParams& p, std::span<const int32_t> hist = {}) {
  auto d = Sampler(p).distribution(kLogits, hist);
  std::vector<int> out;
  for (size_t i = 0; i < d.size(); ++i)
    if (d[i] > 0) out.push_back(static_cast<int>(i));
  return out;
}

TEST(Sampler, GreedyIsArgmax) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p);
  EXPECT_EQ(s.sample(kLogits, {}), 1);
  EXPECT_EQ(eligible(p), (std::vector<int>{1}));
}

TEST(Sampler, TopKKeepsTheKBest) {
  SamplingParams p;
  p.top_k = 2;
  EXPECT_EQ(eligible(p), (std::vector<int>{1, 3}));
  auto d = Sampler(p).distribution(kLogits, {});
  EXPECT_NEAR(d[1], 0.4 / 0.7, 1e-6);
}

TEST(Sampler, TopPKeepsTheTokenThatCrossesP) {
  SamplingParams p;
  p.top_p = 0.7f;  // 0.4 + 0.3 reaches it exactly
  EXPECT_EQ(eligible(p), (std::vector<int>{1, 3}));
  p.top_p = 0.71f;  // needs the third
  EXPECT_EQ(eligible(p), (std::vector<int>{0, 1, 3}));
  p.top_p = 0.1f;  // at least one always stays
  EXPECT_EQ(eligible(p), (std::vector<int>{1}));
}

TEST(Sampler, MinPIsRelativeToTheTopToken) {
  SamplingParams p;
  p.min_p = 0.3f;  // keep prob >= 0.12
  EXPECT_EQ(eligible(p), (std::vector<int>{0, 1, 3}));
  p.min_p = 0.24f;  // >= 0.096: token 4 (0.1) too
  EXPECT_EQ(eligible(p), (std::vector<int>{0, 1, 3, 4}));
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  SamplingParams p;
  p.temperature = 0.5f;
  auto d = Sampler(p).distribution(kLogits, {});
  // p^(1/T) renormalised: 0.16 / (0.16 + 0.09 + 0.0225 + 0.01 + 0.0025)
  EXPECT_NEAR(d[1], 0.16 / 0.2850, 1e-6);
  p.temperature = 2.0f;
  d = Sampler(p).distribution(kLogits, {});
  const double z = std::sqrt(0.4) + std::sqrt(0.3) + std::sqrt(0.15) + std::sqrt(0.1) + std::sqrt(0.05);
  EXPECT_NEAR(d[2], std::sqrt(0.05) / z, 1e-6);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  std::vector<float> logits = {2.0f, -1.0f, 1.0f};
  SamplingParams p;
  p.repeat_penalty = 2.0f;
  const std::vector<int32_t> hist = {0, 1, 1};
  auto d = Sampler(p).distribution(logits, hist);
  const double z = std::exp(1.0) + std::exp(-2.0) + std::exp(1.0);
  EXPECT_NEAR(d[0], std::exp(1.0) / z, 1e-9);
  EXPECT_NEAR(d[1], std::exp(-2.0) / z, 1e-9);
  // Only the last n tokens count.
  p.repeat_last_n = 1;
  d = Sampler(p).distribution(logits, hist);
  EXPECT_NEAR(d[0], std::exp(2.0) / (std::exp(2.0) + std::exp(-2.0) + std::exp(1.0)), 1e-9);
  // Greedy with a penalty changes the choice.
  p.temperature = 0;
  p.repeat_last_n = -1;
  p.repeat_penalty = 3.0f;
  EXPECT_EQ(Sampler(p).sample(logits, hist), 2);
}

TEST(Sampler, DrawsFollowTheDistribution) {
  SamplingParams p;
  p.top_k = 4;
  p.seed = 42;
  Sampler s(p);
  const auto expect = s.distribution(kLogits, {});
  std::vector<int> counts(5, 0);
  const int n = 200000;
  for (int i = 0; i < n; ++i) ++counts[s.sample(kLogits, {})];
  EXPECT_EQ(counts[2], 0);  // removed by top-k
  double chi2 = 0;
  for (int i = 0; i < 5; ++i)
    if (expect[i] > 0) chi2 += std::pow(counts[i] - n * expect[i], 2) / (n * expect[i]);
  EXPECT_LT(chi2, 16.3);  // 3 degrees of freedom, p = 0.001
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingParams p;
  p.seed = 7;
  Sampler a(p), b(p);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(kLogits, {}), b.sample(kLogits, {}));
  p.seed = 8;
  Sampler c(p), d(SamplingParams{.seed = 7});
  int differ = 0;
  for (int i = 0; i < 100; ++i) differ += c.sample(kLogits, {}) != d.sample(kLogits, {});
  EXPECT_GT(differ, 0);
}

// Exact logits (multiples of 1/4) that change with the step; ids tie in pairs.
std::vector<float> logits_at(int step, int vocab) {
  std::vector<float> l(vocab);
  for (int i = 0; i < vocab; ++i) l[i] = static_cast<float>((i * 37 + step * 11) % 61 / 2) * 0.25f - 4.0f;
  return l;
}

std::vector<SamplingParams> mixed_params() {
  return {
      {.temperature = 1.0f, .seed = 42},
      {.temperature = 0.7f, .top_k = 10, .seed = 7},
      {.temperature = 1.3f, .top_p = 0.8f, .min_p = 0.05f, .seed = 123456789},
      {.temperature = 0.9f, .top_k = 20, .top_p = 0.95f, .repeat_penalty = 1.3f, .repeat_last_n = 8, .seed = 5},
      {.temperature = 0.0f, .repeat_penalty = 1.5f, .seed = 3},
  };
}

// The tokens sample() gave for mixed_params() before it was split into draw() and
// sample_with_uniform() (recorded with that code): seeded outputs must not change.
TEST(Sampler, SeededTokensAreAsBeforeTheSplit) {
  const std::vector<std::vector<int32_t>> recorded = {
      {49, 39, 45, 7, 53, 5, 36, 19, 19, 22, 0, 28, 44, 34, 50, 58, 41, 21, 2, 7, 46, 15, 28, 3},
      {46, 59, 1, 55, 7, 0, 46, 49, 19, 50, 53, 28, 26, 6, 55, 12, 56, 59, 49, 19, 35, 25, 0, 3},
      {23, 21, 9, 2, 48, 18, 6, 16, 37, 55, 15, 56, 31, 19, 50, 15, 5, 44, 42, 45, 55, 30, 0, 26},
      {46, 6, 19, 37, 7, 5, 8, 44, 52, 17, 10, 31, 16, 57, 9, 12, 5, 18, 52, 47, 27, 53, 0, 31},
      {28, 31, 34, 37, 40, 43, 46, 49, 52, 55, 58, 0, 59, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36},
  };
  const auto params = mixed_params();
  for (size_t k = 0; k < params.size(); ++k) {
    Sampler s(params[k]);
    std::vector<int32_t> hist = {1, 2, 3}, got;
    for (int step = 0; step < 24; ++step) {
      got.push_back(s.sample(logits_at(step, 61), hist));
      hist.push_back(got.back());
    }
    EXPECT_EQ(got, recorded[k]) << "params " << k;
  }
}

// sample() is draw() then sample_with_uniform(), on many rows, parameters and seeds; draw() is
// the generator's uniform sequence itself, and plain greedy takes no draw.
TEST(Sampler, SampleIsDrawThenSampleWithUniform) {
  std::mt19937 gen(2024);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_int_distribution<int> pick(0, 1 << 20);
  for (int trial = 0; trial < 200; ++trial) {
    SamplingParams p;
    p.seed = 1000 + trial;
    p.temperature = trial % 7 == 0 ? 0.0f : 0.3f + 0.1f * (trial % 15);
    p.top_k = trial % 3 == 0 ? 0 : 1 + pick(gen) % 40;
    p.top_p = trial % 4 == 0 ? 1.0f : 0.5f + 0.1f * (trial % 5);
    p.min_p = trial % 5 == 0 ? 0.0f : 0.02f * (trial % 6);
    p.repeat_penalty = trial % 2 == 0 ? 1.0f : 1.1f + 0.2f * (trial % 3);
    p.repeat_last_n = trial % 6 == 1 ? -1 : 1 + trial % 64;
    const int vocab = 1 + pick(gen) % 300;
    Sampler whole(p), split(p);
    std::mt19937_64 raw(p.seed);
    std::vector<int32_t> hist;
    for (int step = 0; step < 20; ++step) {
      std::vector<float> l(vocab);
      for (auto& v : l) v = normal(gen);
      if (step % 3 == 0)
        for (auto& v : l) v = std::round(v * 2) / 2;  // ties
      const int32_t a = whole.sample(l, hist);
      const double u = split.draw();
      if (ops::sampling_uses_draw(p))
        ASSERT_EQ(u, std::uniform_real_distribution<double>(0.0, 1.0)(raw)) << "trial " << trial;
      else
        ASSERT_EQ(u, 0.0);
      ASSERT_EQ(split.sample_with_uniform(l, hist, u), a) << "trial " << trial << " step " << step;
      ASSERT_EQ(ops::sample_with_uniform(p, l, hist, u), a);
      hist.push_back(a);
    }
  }
}

}  // namespace
}  // namespace nibble

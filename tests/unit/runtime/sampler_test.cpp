// Sampling on fixed logits: which tokens stay eligible, and the distribution over many draws.
#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
}  // namespace nibble

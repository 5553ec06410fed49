// Choosing the next token from a row of logits (the steps: ops/cpu/sampling.h), with a seeded
// generator for the draw. sample() = draw() then sample_with_uniform(): a caller that picks on
// a device (Executor::forward_sample) takes the draw here and hands u to the device, which picks
// the token sample_with_uniform would.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "ops/cpu/sampling.h"

namespace nibble {

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}

  const SamplingParams& params() const { return p_; }

  // `history`: the sequence so far (prompt and generated), for the repetition penalty.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // The uniform number in [0, 1) the next sample() would use, advancing the generator as that
  // sample() would: plain greedy (ops::sampling_uses_draw false) takes no draw and returns 0.
  double draw();
  // The token these parameters pick with uniform u.
  int32_t sample_with_uniform(std::span<const float> logits, std::span<const int32_t> history, double u) const {
    return ops::sample_with_uniform(p_, logits, history, u);
  }

  // The probabilities the draw uses after every step but the draw itself (greedy: one-hot).
  // Zero for the tokens the filters removed. For tests and for logprobs.
  std::vector<double> distribution(std::span<const float> logits, std::span<const int32_t> history) const {
    return ops::sampling_distribution(p_, logits, history);
  }

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

}  // namespace nibble

// Choosing the next token from a row of logits. The steps run in transformers' order:
// repetition penalty, temperature, top-k, top-p, min-p, then a draw from what is left.
// Temperature 0 is greedy (argmax, lowest id on ties).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace nibble {

struct SamplingParams {
  float temperature = 1.0f;     // 0 = greedy
  int top_k = 0;                // 0 = off
  float top_p = 1.0f;           // 1 = off
  float min_p = 0.0f;           // 0 = off
  float repeat_penalty = 1.0f;  // 1 = off; > 1 discourages tokens already in the context
  int repeat_last_n = 64;       // how far back the penalty looks; -1 = the whole context
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}

  // `history`: the sequence so far (prompt and generated), for the repetition penalty.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // The probabilities the draw uses after every step but the draw itself (greedy: one-hot).
  // Zero for the tokens the filters removed. For tests and for logprobs.
  std::vector<double> distribution(std::span<const float> logits, std::span<const int32_t> history) const;

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

}  // namespace nibble

// Choosing the next token from a row of logits, given the uniform number of the draw: the CPU
// reference that src/ops/cuda/sampling.h matches, and what Executor::forward_sample does on the
// host. The steps run in transformers' order: repetition penalty, temperature, top-k, top-p,
// min-p, then an inverse-CDF draw from what is left. Temperature 0 is greedy (argmax, lowest id
// on ties). Stateless: the random generator lives in runtime/sampler.h (Sampler), which draws u.
#pragma once

#include <cstdint>
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
  uint64_t seed = 0;            // for Sampler's generator; the functions below ignore it
};

namespace ops {

// Whether picking a token with `p` uses the uniform draw. Plain greedy (temperature 0, no
// penalty) does not, and Sampler does not advance its generator for it; greedy with a penalty
// does (it always has: the one-hot distribution is drawn from), so seeded outputs stay as they were.
inline bool sampling_uses_draw(const SamplingParams& p) { return !(p.temperature <= 0.0f && p.repeat_penalty == 1.0f); }

// The part of `history` the repetition penalty of `p` looks at: its last repeat_last_n ids (all
// of them with -1), none when `p` has no penalty.
std::span<const int32_t> penalized_ids(const SamplingParams& p, std::span<const int32_t> history);

// The probabilities the draw uses after every step but the draw itself (greedy: one-hot).
// Zero for the tokens the filters removed. `history`: the sequence so far (prompt and
// generated), for the repetition penalty.
std::vector<double> sampling_distribution(const SamplingParams& p, std::span<const float> logits,
                                          std::span<const int32_t> history);

// The token `p` picks with uniform u in [0, 1): the first id, in id order, whose cumulative
// probability exceeds u (the last kept id if rounding leaves u above the total). u is unused
// when !sampling_uses_draw(p).
int32_t sample_with_uniform(const SamplingParams& p, std::span<const float> logits, std::span<const int32_t> history,
                            double u);

}  // namespace ops
}  // namespace nibble

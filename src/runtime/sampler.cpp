#include "runtime/sampler.h"

namespace nibble {

double Sampler::draw() {
  if (!ops::sampling_uses_draw(p_)) return 0.0;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  return sample_with_uniform(logits, history, draw());
}

}  // namespace nibble

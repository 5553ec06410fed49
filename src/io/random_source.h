// Random bf16 weights of whatever shape the model asks for: real-shape benchmarks with no
// download (`nibble bench --config config.json --random-weights`).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/tensor_source.h"

namespace nibble {

class RandomSource : public TensorSource {
 public:
  explicit RandomSource(uint64_t seed = 0) : seed_(seed) {}

  bool has(const std::string& name) const override { return true; }
  Result<TensorRef> get(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override { return "random weights"; }
  // Norm weights (names ending in "norm.weight") are drawn near 1 and everything else with a
  // std of 1/sqrt(cols), so activations keep a sane scale through many layers.
  Result<TensorRef> get_shaped(const std::string& name,
                               const std::vector<int64_t>& shape) const override;

 private:
  uint64_t seed_;
  mutable std::map<std::string, std::pair<TensorRef, std::vector<uint16_t>>> made_;
};

}  // namespace nibble

// Random inputs shared by the op tests of every backend (tests/ops): one seeded generator per
// test binary, so that a failure reproduces, and fresh values for every check.
#pragma once

#include <random>
#include <vector>

namespace nibble::op_test {

inline std::mt19937& rng() {
  static std::mt19937 g(20261121);
  return g;
}

// Normal(0, scale) values.
inline std::vector<float> randn(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng());
  return v;
}

}  // namespace nibble::op_test

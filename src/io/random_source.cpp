#include "io/random_source.h"

#include <cmath>
#include <functional>

namespace nibble {

namespace {
// splitmix64: fast, and each tensor's values depend only on (seed, name, index), so filling
// in parallel gives the same weights as filling serially.
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

Result<TensorRef> RandomSource::get(const std::string& name) const {
  auto it = made_.find(name);
  if (it == made_.end()) return Status::not_found("random weights: no tensor '{}' made yet", name);
  return it->second.first;
}

std::vector<std::string> RandomSource::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : made_) out.push_back(n);
  return out;
}

Result<TensorRef> RandomSource::get_shaped(const std::string& name,
                                           const std::vector<int64_t>& shape) const {
  auto it = made_.find(name);
  if (it != made_.end()) return it->second.first;
  TensorRef t;
  t.name = name;
  t.dtype = DType::kBF16;
  t.shape = shape;
  t.file = "random weights";
  const int64_t n = t.numel();
  const int64_t cols = shape.back();
  const bool is_norm = name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
  const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
  const float scale = is_norm || is_bias ? 0.1f : 1.0f / std::sqrt(static_cast<float>(cols));
  const float base = is_norm ? 1.0f : 0.0f;
  const uint64_t key = mix(seed_ ^ std::hash<std::string>{}(name));
  std::vector<uint16_t> data(n);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    // Uniform in [-sqrt(3), sqrt(3)): unit variance.
    const uint64_t r = mix(key + static_cast<uint64_t>(i));
    const float u = static_cast<float>(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
    data[i] = f32_to_bf16(base + scale * 1.7320508f * u);
  }
  t.data = data.data();
  t.nbytes = n * 2;
  auto& slot = made_[name];
  slot.second = std::move(data);  // the vector's buffer does not move with it
  slot.first = t;
  slot.first.data = slot.second.data();
  return slot.first;
}

}  // namespace nibble

// The transformers goldens of tests/data/models (tools/make_goldens.py): which model folders have
// them, and their token sequences with fp32 logits.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace nibble::test {

struct GoldenSeq {
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [T, vocab]
};

inline std::vector<GoldenSeq> read_goldens(const std::string& dir) {
  auto f = SafetensorsFile::open(dir + "/golden.safetensors");
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  std::vector<GoldenSeq> out;
  if (!f.is_ok()) return out;
  for (int i = 0;; ++i) {
    auto t = f->tensors().find("tokens_" + std::to_string(i));
    auto l = f->tensors().find("logits_" + std::to_string(i));
    if (t == f->tensors().end() || l == f->tensors().end()) break;
    const auto* tp = static_cast<const int32_t*>(t->second.data);
    const auto* lp = static_cast<const float*>(l->second.data);
    out.push_back({{tp, tp + t->second.numel()}, {lp, lp + l->second.numel()}});
  }
  return out;
}

inline std::vector<std::string> golden_model_dirs() {
  std::vector<std::string> dirs;
  for (const auto& e : std::filesystem::directory_iterator(std::string(NIBBLE_TEST_DATA) + "/models"))
    if (std::filesystem::exists(e.path() / "golden.safetensors")) dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

}  // namespace nibble::test

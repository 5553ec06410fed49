// `nibble logits` end to end: the JSON it prints equals transformers' logits, and `nibble info`
// describes the model, for a golden model of each family.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"

namespace nibble {
namespace {

std::string run_capture(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *rc = pclose(p);
  return out;
}

class LogitsCli : public ::testing::TestWithParam<std::string> {};

TEST_P(LogitsCli, JsonMatchesTransformers) {
  const std::string dir = std::string(NIBBLE_TEST_DATA) + "/models/" + GetParam();
  auto golden = SafetensorsFile::open(dir + "/golden.safetensors");
  ASSERT_TRUE(golden.is_ok()) << golden.status().message();
  const TensorRef& toks = golden->tensors().at("tokens_2");
  const TensorRef& ref = golden->tensors().at("logits_2");
  std::string list;
  for (int64_t i = 0; i < toks.numel(); ++i)
    list += (i ? "," : "") + std::to_string(static_cast<const int32_t*>(toks.data)[i]);
  int rc = 0;
  const std::string out = run_capture(std::string(NIBBLE_BINARY) + " logits -m " + dir + " --tokens " + list, &rc);
  ASSERT_EQ(rc, 0);
  auto j = nlohmann::json::parse(out);
  ASSERT_TRUE(j.contains("logits"));
  const auto& rows = j["logits"];
  ASSERT_EQ(static_cast<int64_t>(rows.size()), toks.numel());
  const int64_t vocab = ref.shape[1];
  const float* r = static_cast<const float*>(ref.data);
  for (size_t t = 0; t < rows.size(); ++t) {
    ASSERT_EQ(static_cast<int64_t>(rows[t].size()), vocab);
    double max_diff = 0, max_ref = 0;
    for (int64_t v = 0; v < vocab; ++v) {
      max_diff = std::max(max_diff, std::abs(rows[t][v].get<double>() - r[t * vocab + v]));
      max_ref = std::max(max_ref, std::abs(static_cast<double>(r[t * vocab + v])));
    }
    EXPECT_LE(max_diff / max_ref, 2e-4) << "position " << t;
  }
}

TEST_P(LogitsCli, InfoDescribesTheModel) {
  const std::string dir = std::string(NIBBLE_TEST_DATA) + "/models/" + GetParam();
  int rc = 0;
  auto j = nlohmann::json::parse(run_capture(std::string(NIBBLE_BINARY) + " info --json -m " + dir, &rc));
  ASSERT_EQ(rc, 0);
  std::ifstream cf(dir + "/config.json");
  auto cfg = nlohmann::json::parse(cf);
  EXPECT_EQ(j["architecture"], cfg["architectures"][0]);
  EXPECT_EQ(j["layers"], cfg["num_hidden_layers"]);
  EXPECT_GT(j["parameters"].get<int64_t>(), 0);
  EXPECT_EQ(j["params_by_dtype"].begin().key(), "bf16");
}

INSTANTIATE_TEST_SUITE_P(Models, LogitsCli,
                         ::testing::Values("llama3_classic", "qwen2_bias", "qwen3_headdim", "gemma3_text"));

}  // namespace
}  // namespace nibble

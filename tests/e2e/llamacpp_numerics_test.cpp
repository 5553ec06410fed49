// `--numerics llamacpp` on the bundled model reproduces llama.cpp's greedy continuations:
// tests/data/llamacpp/smollm2_q4_1_greedy.json holds llama.cpp's prompt ids and its first 32
// argmax tokens for 3 plain and 3 chat prompts (recorded by `tools/compare_llamacpp.sh
// --record`, llama.cpp commit named in the file). Skipped when the bundled model is absent.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "runtime/model_bundle.h"
#include "runtime/session.h"

namespace nibble {
namespace {

nlohmann::json recorded() {
  std::ifstream f(std::string(NIBBLE_TEST_DATA) + "/llamacpp/smollm2_q4_1_greedy.json");
  return nlohmann::json::parse(f);
}

std::unique_ptr<Model> load(const std::string& path, Numerics numerics) {
  LoadOptions o;
  o.prefault = false;
  o.numerics = numerics;
  auto m = Model::load(path, o);
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  return m.is_ok() ? std::move(m.value()) : nullptr;
}

std::vector<int32_t> greedy(const Model& model, const std::vector<int32_t>& prompt, int n) {
  Session session(model, 1024);
  GenerateOptions o;
  o.max_new_tokens = n;
  o.sampling.temperature = 0.0f;
  auto r = session.generate(prompt, o);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? r->tokens : std::vector<int32_t>{};
}

class LlamaCppNumerics : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = default_model_path();
    if (!std::filesystem::exists(path_)) GTEST_SKIP() << path_ << " not present (tools/fetch_model.sh)";
    data_ = recorded();
    ASSERT_EQ(std::filesystem::path(path_).filename().string(), data_["model"].get<std::string>());
  }
  std::string path_;
  nlohmann::json data_;
};

TEST_F(LlamaCppNumerics, GreedyContinuationsEqualLlamaCpp) {
  auto model = load(path_, Numerics::kLlamaCpp);
  ASSERT_NE(model, nullptr);
  const int n = data_["n_tokens"];
  int same = 0;
  for (const auto& p : data_["prompts"]) {
    const auto prompt = p["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = p["llamacpp_ids"].get<std::vector<int32_t>>();
    const auto got = greedy(*model, prompt, n);
    EXPECT_EQ(got, want) << "[" << p["kind"].get<std::string>() << "] " << p["text"].get<std::string>()
                         << " (llama.cpp " << data_["llamacpp_commit"].get<std::string>() << ")";
    same += got == want;
  }
  EXPECT_EQ(same, static_cast<int>(data_["prompts"].size()));
}

TEST_F(LlamaCppNumerics, TokenizerGivesLlamaCppsPromptIdsForPlainPrompts) {
  auto bundle = load_model_bundle(path_);
  ASSERT_TRUE(bundle.is_ok()) << bundle.status().message();
  for (const auto& p : data_["prompts"]) {
    if (p["kind"] != "plain") continue;
    const auto ids = bundle->tokenizer.encode(p["text"].get<std::string>(), /*add_special_tokens=*/true);
    EXPECT_EQ(ids, p["prompt_ids"].get<std::vector<int32_t>>()) << p["text"];
  }
}

}  // namespace
}  // namespace nibble

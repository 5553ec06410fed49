// The bundled model answers the demo's question (make test fetches it; skipped when absent).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "runtime/model_bundle.h"

namespace nibble {
namespace {

TEST(BundledModel, AnswersParis) {
  const std::string path = default_model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present (tools/fetch_model.sh)";
  const std::string cmd = std::string(NIBBLE_BINARY) +
                          " run --chat -p \"What is the capital of France? Answer in one word.\" -n 24 --temp 0 --json";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << out;
  const auto last_line = out.substr(out.rfind('{'));
  auto j = nlohmann::json::parse(last_line);
  EXPECT_NE(j["text"].get<std::string>().find("Paris"), std::string::npos) << j.dump();
  EXPECT_EQ(j["stop_reason"], "eos");
  EXPECT_GT(j["prompt_tokens"].get<int>(), 10);  // the chat template was applied
}

}  // namespace
}  // namespace nibble

// Runs the built `nibble chat-template` once on a shared tokenizer folder.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace {

namespace fs = std::filesystem;

TEST(ChatTemplateCli, RendersQwen3FromStdin) {
  fs::path model = fs::path(NIBBLE_SHARED_DIR) / "tokenizers" / "qwen3";
  if (!fs::exists(model / "tokenizer_config.json")) GTEST_SKIP() << "no shared qwen3 tokenizer";
  fs::path input = fs::temp_directory_path() / ("nibble_chat_cli_" + std::to_string(::getpid()) + ".json");
  std::ofstream(input) << R"({"messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Hi \"there\" 🦙"}],
                            "enable_thinking": false})";
  std::string cmd = std::string(NIBBLE_BINARY) + " chat-template -m " + model.string() + " < " + input.string();
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  fs::remove(input);
  EXPECT_EQ(rc, 0);
  // transformers: apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
  EXPECT_EQ(out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi \"there\" 🦙<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

}  // namespace

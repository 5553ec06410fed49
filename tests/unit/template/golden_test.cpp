// Every golden in tests/data/chat_template/ (rendered by transformers' apply_chat_template, see
// tools/make_chat_template_goldens.py) must render byte for byte, or fail where transformers did.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "template/chat_template_loader.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

ojson read_json(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ojson::parse(ss.str());
}

std::vector<fs::path> golden_files() {
  std::vector<fs::path> files;
  for (auto& e : fs::directory_iterator(fs::path(NIBBLE_TEST_DATA) / "chat_template"))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

ChatRequest request_of(const ojson& c) {
  ChatRequest r;
  r.messages = c["messages"];
  r.tools = c["tools"];
  r.add_generation_prompt = c["add_generation_prompt"].get<bool>();
  r.kwargs = c["kwargs"];
  return r;
}

TEST(ChatTemplateGolden, AllGoldensRenderIdentically) {
  auto files = golden_files();
  ASSERT_GE(files.size(), 10u) << "goldens missing under " << NIBBLE_TEST_DATA;
  int checked = 0;
  for (auto& file : files) {
    ojson g = read_json(file);
    ChatTemplateSet set;
    set.templates.emplace_back("default", g["template"].get<std::string>());
    set.special_tokens = g["special_tokens"];
    ChatRenderOptions opt;
    opt.now = g["now"].get<std::time_t>();
    for (auto& c : g["cases"]) {
      SCOPED_TRACE(file.filename().string() + " / " + c["name"].get<std::string>());
      auto out = apply_chat_template(set, request_of(c), opt);
      if (c.contains("expected")) {
        ASSERT_TRUE(out.is_ok()) << out.status().message();
        EXPECT_EQ(out.value(), c["expected"].get<std::string>());
      } else {
        ASSERT_FALSE(out.is_ok()) << "transformers failed with: " << c["error"] << "\nwe rendered:\n" << out.value();
        // A raise_exception() message is the template's own text: it must come through unchanged.
        std::string err = c["error"].get<std::string>();
        if (g["template"].get<std::string>().find(err) != std::string::npos)
          EXPECT_NE(out.status().message().find(err), std::string::npos) << out.status().message();
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 200);
}

// The loader must find the same template and special tokens transformers used, straight from
// the shared tokenizer folders (the xz-compressed gemma3 config is covered by its golden only).
TEST(ChatTemplateGolden, LoaderMatchesTransformersSpecialTokens) {
  fs::path shared = fs::path(NIBBLE_SHARED_DIR) / "tokenizers";
  if (!fs::exists(shared)) GTEST_SKIP() << "no shared folder at " << shared;
  int loaded = 0;
  for (auto& file : golden_files()) {
    ojson g = read_json(file);
    fs::path dir = shared / g["name"].get<std::string>();
    if (!fs::exists(dir / "tokenizer_config.json")) continue;
    SCOPED_TRACE(dir.string());
    auto set = load_chat_templates(dir);
    ASSERT_TRUE(set.is_ok()) << set.status().message();
    auto t = set->select(false);
    ASSERT_TRUE(t.is_ok()) << t.status().message();
    EXPECT_EQ(t.value(), g["template"].get<std::string>());
    EXPECT_EQ(set->special_tokens.dump(), g["special_tokens"].dump());
    ++loaded;
  }
  EXPECT_GE(loaded, 4);
}

}  // namespace
}  // namespace nibble

// tokenizer_from_gguf against Tokenizer::from_json on the same vocabulary: for each real
// tokenizer in ../shared/tokenizers, the GGUF metadata llama.cpp's converter would write
// (tokenizer.ggml.model gpt2, tokens, token_type, merges, pre, bos/eos) is built in memory
// (the vocabularies are too large to commit), and both tokenizers must give the same ids.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gguf_test_util.h"
#include "tokenizer/gguf_tokenizer.h"

namespace nibble {
namespace {

using json = nlohmann::json;

std::string xz_text(const std::string& path) {
  std::string out;
  FILE* p = popen(("xz -dc '" + path + "' 2>/dev/null").c_str(), "r");
  if (!p) return out;
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// llama.cpp token types.
constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;

// The GGUF a converter would write for `tj` (a tokenizer.json), tokenizer metadata only.
std::vector<uint8_t> gguf_for(const json& tj, const std::string& pre) {
  const json& model = tj["model"];
  int64_t n = 0;
  for (const auto& [tok, id] : model["vocab"].items()) n = std::max<int64_t>(n, id.get<int64_t>() + 1);
  for (const auto& a : tj["added_tokens"]) n = std::max<int64_t>(n, a["id"].get<int64_t>() + 1);
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n, kUnused);
  for (int64_t i = 0; i < n; ++i) tokens[i] = "[PAD" + std::to_string(i) + "]";
  for (const auto& [tok, id] : model["vocab"].items()) {
    tokens[id.get<int64_t>()] = tok;
    types[id.get<int64_t>()] = kNormal;
  }
  for (const auto& a : tj["added_tokens"]) {
    const int64_t id = a["id"];
    tokens[id] = a["content"];
    types[id] = a["special"].get<bool>() ? kControl : kUserDefined;
  }
  std::vector<std::string> merges;
  for (const auto& m : model["merges"])
    merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());

  test::GgufBuilder b;
  b.string("general.architecture", "llama");
  b.string("tokenizer.ggml.model", "gpt2");
  b.string("tokenizer.ggml.pre", pre);
  b.strings("tokenizer.ggml.tokens", tokens);
  b.i32s("tokenizer.ggml.token_type", types);
  b.strings("tokenizer.ggml.merges", merges);
  // A BOS where the tokenizer.json's post-processor adds one.
  const json& post = tj["post_processor"];
  if (post.is_object() && post["type"] == "TemplateProcessing" && post["single"][0].contains("SpecialToken")) {
    const std::string bos = post["single"][0]["SpecialToken"]["id"];
    const int64_t id = std::find(tokens.begin(), tokens.end(), bos) - tokens.begin();
    b.u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(id));
    b.boolean("tokenizer.ggml.add_bos_token", true);
  } else {
    b.boolean("tokenizer.ggml.add_bos_token", false);
  }
  // A 1-element dummy tensor, as some readers expect at least one.
  b.tensor("dummy", GgmlType::F32, {1}, std::vector<uint8_t>(4, 0));
  return b.build();
}

const std::vector<std::string>& texts() {
  static const std::vector<std::string> t = {
      "Hello world",
      "Hello, world! How are you doing today?",
      " leading space and trailing space ",
      "   three leading spaces",
      "trailing spaces   ",
      "line one\nline two\n\nline four\r\nwindows\ttab",
      "\n\n\n",
      "I'm sure they'll say we've done what you'd've DONE'S",
      "numbers 1 12 123 1234 12345 3.14159 -42 1,000,000",
      "CamelCaseWords and snake_case_words and SHOUTING",
      "def f(x):\n    return x ** 2  # square\n",
      "int main() { return printf(\"%d\\n\", 0x1F); }",
      "naïve café résumé Ünïcödé",
      "e\xCC\x81 (e + combining acute) and \xC3\xA9 (precomposed)",
      "日本語のテキストと中文文本",
      "한국어 텍스트",
      "Здравствуй, мир!",
      "مرحبا بالعالم",
      "emoji 😀🎉👍🏽 and 🇫🇷 flags",
      "mixed: abc123def 456ghi",
      "URLs: https://example.com/path?q=1&r=2#frag",
      "   \t  \n  mixed whitespace \u00a0nbsp",
      "a",
      "",
      "<|endoftext|> and <|im_start|>user\nhi<|im_end|>",
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
      "<s>[INST] hello [/INST]</s>",
      "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!!! ...???",
  };
  return t;
}

struct TokCase {
  std::string folder;  // under ../shared/tokenizers
  std::string pre;     // tokenizer.ggml.pre as llama.cpp's converter names it
};

class GgufTokenizer : public ::testing::TestWithParam<TokCase> {};

TEST_P(GgufTokenizer, SameIdsAsTokenizerJson) {
  const auto& [folder, pre] = GetParam();
  const std::string text = xz_text(std::string(NIBBLE_SHARED_DIR) + "/tokenizers/" + folder + "/tokenizer.json.xz");
  ASSERT_FALSE(text.empty()) << folder << ": could not read tokenizer.json.xz (is ../shared there?)";
  auto ref = Tokenizer::from_json(text);
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  const json tj = json::parse(text);
  const std::vector<uint8_t> bytes = gguf_for(tj, pre);
  auto f = GgufFile::from_memory(bytes.data(), bytes.size(), folder + ".gguf");
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  auto tok = tokenizer_from_gguf(*f);
  ASSERT_TRUE(tok.is_ok()) << tok.status().message();
  EXPECT_EQ(tok->vocab_size(), ref->vocab_size());
  for (const auto& s : texts()) {
    for (bool special : {false, true}) {
      const auto a = tok->encode(s, special);
      const auto b = ref->encode(s, special);
      EXPECT_EQ(a, b) << folder << " add_special_tokens=" << special << ": \"" << s << "\"";
      EXPECT_EQ(tok->decode(a, false), ref->decode(b, false)) << folder << ": \"" << s << "\"";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Real, GgufTokenizer,
                         ::testing::Values(TokCase{"gpt2", "gpt2"}, TokCase{"llama3", "llama-bpe"},
                                           TokCase{"qwen2_5", "qwen2"}, TokCase{"mistral_nemo", "tekken"}),
                         [](const auto& info) { return info.param.folder; });

// A SentencePiece-style vocabulary (tokenizer.ggml.model "llama") or an unknown pre-tokenizer
// is refused with an error that names the file and the value.
TEST(GgufTokenizer, UnsupportedModelsAreNamed) {
  for (const auto& [model, pre] : {std::pair{"llama", "default"}, std::pair{"gpt2", "no-such-pre"}}) {
    test::GgufBuilder b;
    b.string("tokenizer.ggml.model", model);
    b.string("tokenizer.ggml.pre", pre);
    b.strings("tokenizer.ggml.tokens", {"a", "b"});
    b.strings("tokenizer.ggml.merges", {});
    const auto bytes = b.build();
    auto f = GgufFile::from_memory(bytes.data(), bytes.size(), "x.gguf");
    ASSERT_TRUE(f.is_ok()) << f.status().message();
    auto tok = tokenizer_from_gguf(*f);
    ASSERT_FALSE(tok.is_ok());
    EXPECT_EQ(tok.status().code(), StatusCode::kUnsupported) << tok.status().message();
    EXPECT_NE(tok.status().message().find("x.gguf"), std::string::npos) << tok.status().message();
    EXPECT_NE(tok.status().message().find(std::string(model) == "llama" ? "llama" : pre), std::string::npos)
        << tok.status().message();
  }
}

}  // namespace
}  // namespace nibble

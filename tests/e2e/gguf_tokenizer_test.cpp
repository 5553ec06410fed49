// tokenizer_from_gguf against Tokenizer::from_json on the same vocabulary: for each real
// tokenizer in ../shared/tokenizers, the GGUF metadata llama.cpp's converter would write
// (tokenizer.ggml.model gpt2, tokens, token_type, merges, pre, bos/eos) is built in memory
// (the vocabularies are too large to commit), and both tokenizers must give the same ids.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <tuple>
#include <unordered_map>

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

// An unknown tokenizer.ggml.model or an unknown pre-tokenizer
// is refused with an error that names the file and the value.
TEST(GgufTokenizer, UnsupportedModelsAreNamed) {
  for (const auto& [model, pre] : {std::pair{"t5", "default"}, std::pair{"gpt2", "no-such-pre"}}) {
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
    EXPECT_NE(tok.status().message().find(std::string(model) == "t5" ? "t5" : pre), std::string::npos)
        << tok.status().message();
  }
}

// --- tokenizer.ggml.model "llama" (SentencePiece BPE) against Gemma 3's tokenizer.json ---

constexpr int32_t kUnknown = 2, kByte = 6;

size_t utf8_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

struct SpmMeta {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  int64_t bos = -1, eos = -1, unk = -1;
};

// The GGUF vocabulary of a SentencePiece-style BPE tokenizer.json. GGUF stores scores, not
// merges; HF derives merges from scores ordered by (score, left length, right length), all
// descending, ties in vocabulary order. So the file's merges are cut into the fewest runs each
// sorted that way, and every run's merged pieces get one score (minus the run's index): the
// derived order is then the file's order. Pieces no merge makes (characters, bytes, added
// tokens) score 0.
SpmMeta spm_meta(const json& tj) {
  const json& model = tj["model"];
  SpmMeta m;
  int64_t n = 0;
  for (const auto& [tok, id] : model["vocab"].items()) n = std::max<int64_t>(n, id.get<int64_t>() + 1);
  for (const auto& a : tj["added_tokens"]) n = std::max<int64_t>(n, a["id"].get<int64_t>() + 1);
  m.tokens.resize(n);
  m.scores.assign(n, 0.0f);
  m.types.assign(n, kUnused);
  for (int64_t i = 0; i < n; ++i) m.tokens[i] = "[PAD" + std::to_string(i) + "]";
  std::unordered_map<std::string, int64_t> id_of;
  for (const auto& [tok, id] : model["vocab"].items()) {
    const int64_t i = id.get<int64_t>();
    m.tokens[i] = tok;
    id_of[tok] = i;
    const bool byte = tok.size() == 6 && tok.starts_with("<0x") && tok.back() == '>';
    m.types[i] = byte ? kByte : kNormal;
  }
  for (const auto& a : tj["added_tokens"]) {
    const int64_t id = a["id"];
    m.tokens[id] = a["content"];
    id_of.emplace(a["content"].get<std::string>(), id);
    m.types[id] = a["special"].get<bool>() ? kControl : kUserDefined;
  }
  if (model["unk_token"].is_string()) {
    m.unk = id_of.at(model["unk_token"].get<std::string>());
    m.types[m.unk] = kUnknown;
  }
  std::vector<bool> scored(n, false);
  int64_t run = 0;
  std::tuple<size_t, size_t, int64_t, int64_t, int64_t> prev{};
  bool first = true;
  for (const auto& mg : model["merges"]) {
    std::string l, r;
    if (mg.is_string()) {
      const std::string s = mg;
      l = s.substr(0, s.find(' '));
      r = s.substr(s.find(' ') + 1);
    } else {
      l = mg[0];
      r = mg[1];
    }
    const int64_t p = id_of.at(l + r);
    // HF order within a run: lengths descending, then (merged id, left id, right id) ascending.
    const std::tuple<size_t, size_t, int64_t, int64_t, int64_t> key{utf8_chars(l), utf8_chars(r), p, id_of.at(l),
                                                                    id_of.at(r)};
    if (!first) {
      const bool longer = std::pair{std::get<0>(key), std::get<1>(key)} > std::pair{std::get<0>(prev), std::get<1>(prev)};
      const bool same_len = std::pair{std::get<0>(key), std::get<1>(key)} == std::pair{std::get<0>(prev), std::get<1>(prev)};
      const bool ids_back = std::tuple{std::get<2>(key), std::get<3>(key), std::get<4>(key)} <
                            std::tuple{std::get<2>(prev), std::get<3>(prev), std::get<4>(prev)};
      if (longer || (same_len && ids_back)) ++run;
    }
    first = false;
    prev = key;
    if (!scored[p]) {
      scored[p] = true;
      m.scores[p] = -static_cast<float>(run);
    }
  }
  const json& post = tj["post_processor"];
  if (post.is_object() && post["type"] == "TemplateProcessing" && post["single"][0].contains("SpecialToken"))
    m.bos = id_of.at(post["single"][0]["SpecialToken"]["id"].get<std::string>());
  if (id_of.contains("<eos>")) m.eos = id_of.at("<eos>");
  return m;
}

std::vector<uint8_t> spm_gguf(const SpmMeta& m, bool add_space_prefix, bool add_eos) {
  test::GgufBuilder b;
  b.string("general.architecture", "gemma3");
  b.string("tokenizer.ggml.model", "llama");
  b.string("tokenizer.ggml.pre", "default");
  b.strings("tokenizer.ggml.tokens", m.tokens);
  b.f32s("tokenizer.ggml.scores", m.scores);
  b.i32s("tokenizer.ggml.token_type", m.types);
  if (m.bos >= 0) b.u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(m.bos));
  if (m.eos >= 0) b.u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(m.eos));
  if (m.unk >= 0) b.u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(m.unk));
  b.boolean("tokenizer.ggml.add_bos_token", m.bos >= 0);
  b.boolean("tokenizer.ggml.add_eos_token", add_eos);
  b.boolean("tokenizer.ggml.add_space_prefix", add_space_prefix);
  b.tensor("dummy", GgmlType::F32, {1}, std::vector<uint8_t>(4, 0));
  return b.build();
}

const std::vector<std::string>& spm_texts() {
  static const std::vector<std::string> t = {
      "Hello world",
      " leading space and trailing space ",
      "   three leading spaces",
      "line one\nline two\n\nline four\r\nwindows\ttab",
      "\n\n\n",
      "I'm sure they'll say we've done what you'd've DONE'S",
      "numbers 1 12 123 1234 12345 3.14159 -42 1,000,000",
      "def f(x):\n    return x ** 2  # square\n",
      "int main() { return printf(\"%d\\n\", 0x1F); }",
      "naïve café résumé Ünïcödé",
      "e\xCC\x81 (e + combining acute) and \xC3\xA9 (precomposed)",
      "日本語のテキストと中文文本",
      "한국어 텍스트",
      "Здравствуй, мир!",
      "مرحبا بالعالم",
      "emoji 😀🎉👍🏽 and 🇫🇷 flags",
      "rare: \xF0\x9F\xAA\xBF\xF0\x9D\x95\x8F \xE2\xBF\xBB",  // likely byte fallback
      "URLs: https://example.com/path?q=1&r=2#frag",
      "   \t  \n  mixed whitespace \u00a0nbsp",
      "a",
      "",
      " ",
      "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
      "<bos><eos><pad> <unk> and <unused17> inline",
      "<start_of_image><image_soft_token><end_of_image>",
      "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!!! ...???",
      "\xFF\xFE invalid utf8 \xC3",
  };
  return t;
}

void expect_same(const Tokenizer& tok, const Tokenizer& ref, const std::string& what) {
  EXPECT_EQ(tok.vocab_size(), ref.vocab_size()) << what;
  for (const auto& s : spm_texts()) {
    for (bool special : {false, true}) {
      const auto a = tok.encode(s, special);
      const auto b = ref.encode(s, special);
      EXPECT_EQ(a, b) << what << " add_special_tokens=" << special << ": \"" << s << "\"";
      EXPECT_EQ(tok.decode(a, false), ref.decode(b, false)) << what << ": \"" << s << "\"";
      EXPECT_EQ(tok.decode(a, true), ref.decode(b, true)) << what << ": \"" << s << "\"";
    }
  }
}

class GgufSpmTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    text_ = new std::string(xz_text(std::string(NIBBLE_SHARED_DIR) + "/tokenizers/gemma3/tokenizer.json.xz"));
    if (text_->empty()) return;
    tj_ = new json(json::parse(*text_));
    meta_ = new SpmMeta(spm_meta(*tj_));
  }
  static void TearDownTestSuite() {
    delete text_;
    delete tj_;
    delete meta_;
  }
  static std::string* text_;
  static json* tj_;
  static SpmMeta* meta_;
};
std::string* GgufSpmTokenizer::text_ = nullptr;
json* GgufSpmTokenizer::tj_ = nullptr;
SpmMeta* GgufSpmTokenizer::meta_ = nullptr;

// Gemma 3 as its GGUF says it (add_space_prefix false, add_bos): same merges, same ids.
// Gemma's json also has pre_tokenizer Split(" ", MergedWithPrevious), which never matches
// after its Replace(" ", "▁") normalizer, so the GGUF form (no pre-tokenizer) is equivalent.
TEST_F(GgufSpmTokenizer, Gemma3SameMergesAndIds) {
  ASSERT_FALSE(text_->empty()) << "could not read gemma3/tokenizer.json.xz (is ../shared there?)";
  auto ref = Tokenizer::from_json(*text_);
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  const std::vector<uint8_t> bytes = spm_gguf(*meta_, /*add_space_prefix=*/false, /*add_eos=*/false);
  auto f = GgufFile::from_memory(bytes.data(), bytes.size(), "gemma3.gguf");
  ASSERT_TRUE(f.is_ok()) << f.status().message();

  const auto t0 = std::chrono::steady_clock::now();
  auto tok = tokenizer_from_gguf(*f);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(tok.is_ok()) << tok.status().message();
  EXPECT_LT(secs, 20.0) << "tokenizer_from_gguf on a 262k vocabulary";
  std::printf("tokenizer_from_gguf(gemma3, 262k tokens): %.2f s\n", secs);

  // The merges derived from the scores are the file's, in the same order.
  auto gen = gguf_tokenizer_json(*f);
  ASSERT_TRUE(gen.is_ok()) << gen.status().message();
  const json g = json::parse(*gen);
  const json& want = (*tj_)["model"]["merges"];
  const json& got = g["model"]["merges"];
  ASSERT_EQ(got.size(), want.size());
  size_t diffs = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i] && ++diffs <= 5) ADD_FAILURE() << "merge " << i << ": " << got[i] << " vs " << want[i];
  EXPECT_EQ(diffs, 0u);
  EXPECT_EQ(g["model"]["byte_fallback"], true);
  EXPECT_EQ(g["model"]["unk_token"], "<unk>");

  expect_same(*tok, *ref, "gemma3");
}

// The same vocabulary with add_space_prefix and add_eos_token, against Gemma's json edited
// the way HF's LlamaConverter writes those options (Prepend("▁") normalizer, Strip decoder,
// <bos> A <eos> template).
TEST_F(GgufSpmTokenizer, Gemma3SpacePrefixAndEos) {
  ASSERT_FALSE(text_->empty()) << "could not read gemma3/tokenizer.json.xz (is ../shared there?)";
  json tj = *tj_;
  tj["normalizer"] = {{"type", "Sequence"},
                      {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, tj["normalizer"]}}};
  tj["decoder"]["decoders"].push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  tj["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
        {{"SpecialToken", {{"id", "<eos>"}, {"type_id", 0}}}}}},
      {"special_tokens",
       {{"<bos>", {{"id", "<bos>"}, {"ids", {meta_->bos}}, {"tokens", {"<bos>"}}}},
        {"<eos>", {{"id", "<eos>"}, {"ids", {meta_->eos}}, {"tokens", {"<eos>"}}}}}}};
  auto ref = Tokenizer::from_json(tj.dump());
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  const std::vector<uint8_t> bytes = spm_gguf(*meta_, /*add_space_prefix=*/true, /*add_eos=*/true);
  auto f = GgufFile::from_memory(bytes.data(), bytes.size(), "gemma3-prefix.gguf");
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  auto tok = tokenizer_from_gguf(*f);
  ASSERT_TRUE(tok.is_ok()) << tok.status().message();
  expect_same(*tok, *ref, "gemma3+prefix+eos");
  const auto ids = tok->encode("Hello", true);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), meta_->bos);
  EXPECT_EQ(ids.back(), meta_->eos);
}

}  // namespace
}  // namespace nibble

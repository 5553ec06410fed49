// Ids and decoded text identical to HuggingFace `tokenizers` on ~250 hard strings, for the six
// real tokenizers and four small trained ones (goldens from tools/make_tokenizer_goldens.py).
#include <string>
#include <vector>

#include "tok_test_util.h"

namespace nibble::test {
namespace {

std::string ids_str(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t k = 0; k < v.size(); ++k) {
    if (k) s += ',';
    s += std::to_string(v[k]);
  }
  return s + "]";
}

void from_hex(const std::string& hex, std::string& bytes) {
  bytes.clear();
  for (size_t k = 0; k + 1 < hex.size(); k += 2) bytes.push_back(char(std::stoi(hex.substr(k, 2), nullptr, 16)));
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, EncodeDecodeAndInvalidUtf8MatchHF) {
  const std::string name = GetParam();
  const Tokenizer* tok = load_tokenizer(name);
  ASSERT_NE(tok, nullptr);
  nlohmann::json g = load_json(tok_data_dir() + "/goldens_" + name + ".json");
  ASSERT_FALSE(g.is_discarded()) << "goldens_" << name << ".json";
  int failures = 0;
  const int kMaxReported = 8;
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    auto ids = c["ids"].get<std::vector<int32_t>>();
    auto ids_sp = c["ids_special"].get<std::vector<int32_t>>();
    auto got = tok->encode(text, false);
    auto got_sp = tok->encode(text, true);
    std::string dec = tok->decode(ids_sp, false);
    std::string dec_skip = tok->decode(ids_sp, true);
    bool ok = got == ids && got_sp == ids_sp && dec == c["decoded"].get<std::string>() &&
              dec_skip == c["decoded_skip"].get<std::string>();
    if (!ok && ++failures <= kMaxReported) {
      ADD_FAILURE() << name << " text=" << nlohmann::json(text).dump() << "\n  ids     " << ids_str(got)
                    << "\n  want    " << ids_str(ids) << "\n  ids+sp  " << ids_str(got_sp)
                    << "\n  want    " << ids_str(ids_sp) << "\n  decode  " << nlohmann::json(dec).dump()
                    << "\n  want    " << c["decoded"].dump() << "\n  skip    "
                    << nlohmann::json(dec_skip).dump() << "\n  want    " << c["decoded_skip"].dump();
    }
  }
  EXPECT_EQ(failures, 0) << name << ": " << failures << " of " << g["cases"].size() << " strings differ";
  EXPECT_GE(g["cases"].size(), 200u);

  // Invalid UTF-8 is repaired like Python's bytes.decode("utf-8", errors="replace"). Checked in
  // the same test so that each tokenizer is loaded once per process (ctest runs each test in
  // its own process).
  ASSERT_FALSE(g["invalid_utf8"].empty());
  for (const auto& c : g["invalid_utf8"]) {
    std::string bytes;
    from_hex(c["hex"], bytes);
    EXPECT_EQ(ids_str(tok->encode(bytes, false)), ids_str(c["ids"].get<std::vector<int32_t>>()))
        << name << " invalid UTF-8 bytes " << c["hex"];
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, GoldenTest,
                         ::testing::Values("llama3", "qwen3", "qwen2_5", "gemma3", "gpt2", "mistral_nemo", "tiny_metaspace",
                                           "tiny_bytelevel", "tiny_llama3", "tiny_spm", "tiny_suffix"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace nibble::test

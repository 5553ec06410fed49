// Each normalizer, pre-tokenizer and decoder option on its own against HF (goldens from
// tools/make_tokenizer_goldens.py): Split in all five behaviours with and without invert,
// Metaspace prepend schemes, Digits, Punctuation, Whitespace, Strip, Replace with regex, ...
#include "tok_test_util.h"
#include "tokenizer/tokenizer_json.h"

namespace nibble::test {
namespace {

TEST(TokenizerComponents, MatchHF) {
  nlohmann::json g = load_json(tok_data_dir() + "/goldens_components.json");
  ASSERT_TRUE(g.is_array());
  size_t checked = 0;
  for (const auto& e : g) {
    const std::string kind = e["kind"];
    const std::string cfg = e["config"].dump();
    for (const auto& c : e["cases"]) {
      if (kind == "pre_tokenizer") {
        auto p = tok::pre_tokenizer_from_json(cfg);
        ASSERT_TRUE(p) << cfg << ": " << p.status().message();
        const std::string in = c["input"];
        std::vector<tok::Piece> pieces;
        if (!in.empty()) pieces.push_back({in, true});
        p.value()->pre_tokenize(pieces);
        std::vector<std::string> got;
        for (auto& x : pieces) got.push_back(x.text);
        EXPECT_EQ(nlohmann::json(got), c["output"]) << cfg << " input " << c["input"];
      } else if (kind == "normalizer") {
        auto n = tok::normalizer_from_json(cfg);
        ASSERT_TRUE(n) << cfg << ": " << n.status().message();
        std::string s = c["input"];
        n.value()->normalize(s);
        EXPECT_EQ(nlohmann::json(s), c["output"]) << cfg << " input " << c["input"];
      } else {
        auto d = tok::decoder_from_json(cfg);
        ASSERT_TRUE(d) << cfg << ": " << d.status().message();
        auto tokens = c["input"].get<std::vector<std::string>>();
        d.value()->decode_chain(tokens);
        std::string s;
        for (auto& t : tokens) s += t;
        EXPECT_EQ(nlohmann::json(s), c["output"]) << cfg << " input " << c["input"];
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 500u);
}

}  // namespace
}  // namespace nibble::test

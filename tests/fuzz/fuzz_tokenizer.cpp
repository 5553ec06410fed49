// libFuzzer target for the tokenizer: tokenizer.json parsing, encoding arbitrary bytes, and
// decoding arbitrary ids. The first input byte picks the mode:
//   0: the rest is a tokenizer.json; if it loads, encode/decode a few strings with it
//   1: the rest is text (any bytes), encoded by three built-in pipelines
//   2: the rest is little-endian int32 ids, decoded by the built-in pipelines
// Invariants checked (abort on failure): no crash, ids within the id space, decode output
// valid UTF-8, and for byte-level pipelines decode(encode(valid text)) == text.
// Build and run: tools/run_fuzzers.sh.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

using nibble::Tokenizer;
namespace tok = nibble::tok;

namespace {

[[noreturn]] void fail(const char* what) {
  fprintf(stderr, "fuzz_tokenizer invariant failed: %s\n", what);
  abort();
}

// A vocab of the 256 byte-level characters plus every two-character combination of "a".."h"
// and a few merges, so that BPE merging and the heap path both run.
std::vector<std::pair<std::string, int32_t>> byte_vocab(std::vector<std::pair<std::string, std::string>>& merges) {
  std::vector<std::pair<std::string, int32_t>> v;
  for (int b = 0; b < 256; ++b) {
    std::string s;
    tok::utf8_append(s, tok::byte_to_unicode(uint8_t(b)));
    v.emplace_back(s, b);
  }
  int32_t id = 256;
  for (char a = 'a'; a <= 'h'; ++a)
    for (char c = 'a'; c <= 'h'; ++c) {
      v.emplace_back(std::string{a, c}, id++);
      merges.emplace_back(std::string(1, a), std::string(1, c));
    }
  return v;
}

std::vector<Tokenizer> build_pipelines() {
  std::vector<Tokenizer> out;
  {
    // Llama 3 style: NFC, regex split, byte-level, special tokens with strip options.
    std::vector<std::pair<std::string, std::string>> merges;
    Tokenizer::Parts p;
    p.model = tok::BpeModel::build(byte_vocab(merges), merges, {}).value();
    p.normalizer = tok::make_unicode_normalizer(tok::NormForm::kNFC);
    p.pre_tokenizer = tok::make_sequence_pre_tokenizer(
        {tok::make_split_pre_tokenizer(
             "", tok::Regex::compile(R"((?i:'s|'t|'re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)").value(),
             tok::SplitBehavior::kIsolated, false),
         tok::make_byte_level_pre_tokenizer(false, false)});
    p.decoder = tok::make_byte_level_decoder();
    p.post_processor = tok::make_template_post_processor({{false, {1000}}, {true, {}}});
    p.added_tokens = {{"<|bos|>", 1000, true, false, false, false, false},
                      {"<mask>", 1001, true, true, true, false, false},
                      {"cat", 1002, false, false, false, true, true}};
    out.push_back(Tokenizer::from_parts(std::move(p)).value());
  }
  {
    // SentencePiece style: Prepend + Replace normalizer, byte fallback, fused unk, Metaspace.
    std::vector<std::pair<std::string, int32_t>> v = {{"<unk>", 0}, {"\xE2\x96\x81", 1}, {"a", 2}, {"b", 3}, {"ab", 4}};
    for (int b = 0; b < 200; ++b) v.emplace_back(fmt::format("<0x{:02X}>", b), 5 + b);
    tok::BpeOptions o;
    o.unk_token = "<unk>";
    o.byte_fallback = true;
    o.fuse_unk = true;
    Tokenizer::Parts p;
    p.model = tok::BpeModel::build(v, {{"a", "b"}}, o).value();
    p.normalizer = tok::make_sequence_normalizer(
        {tok::make_prepend_normalizer("\xE2\x96\x81"), tok::make_replace_normalizer(" ", std::nullopt, "\xE2\x96\x81")});
    p.pre_tokenizer = tok::make_metaspace_pre_tokenizer("\xE2\x96\x81", tok::PrependScheme::kFirst, true);
    p.decoder = tok::make_sequence_decoder({tok::make_replace_decoder("\xE2\x96\x81", std::nullopt, " "),
                                            tok::make_byte_fallback_decoder(), tok::make_fuse_decoder(),
                                            tok::make_strip_decoder(" ", 1, 0)});
    out.push_back(Tokenizer::from_parts(std::move(p)).value());
  }
  {
    // Suffix/prefix BPE with Unicode normalizers and character-class pre-tokenizers.
    std::vector<std::pair<std::string, int32_t>> v = {{"[UNK]", 0}, {"a", 1}, {"##b", 2}, {"a</w>", 3}, {"##b</w>", 4}, {"ab</w>", 5}};
    tok::BpeOptions o;
    o.unk_token = "[UNK]";
    o.continuing_subword_prefix = "##";
    o.end_of_word_suffix = "</w>";
    Tokenizer::Parts p;
    p.model = tok::BpeModel::build(v, {{"a", "##b</w>"}}, o).value();
    p.normalizer = tok::make_sequence_normalizer({tok::make_unicode_normalizer(tok::NormForm::kNFKD),
                                                  tok::make_strip_accents_normalizer(), tok::make_lowercase_normalizer(),
                                                  tok::make_strip_normalizer(true, true)});
    p.pre_tokenizer = tok::make_sequence_pre_tokenizer(
        {tok::make_whitespace_pre_tokenizer(), tok::make_digits_pre_tokenizer(true),
         tok::make_punctuation_pre_tokenizer(tok::SplitBehavior::kMergedWithNext)});
    p.decoder = tok::make_bpe_suffix_decoder("</w>");
    out.push_back(Tokenizer::from_parts(std::move(p)).value());
  }
  return out;
}

void check_ids(const Tokenizer& t, const std::vector<int32_t>& ids) {
  for (int32_t id : ids)
    if (id < 0 || size_t(id) >= t.vocab_size()) fail("id outside the id space");
}

void check_decode(const Tokenizer& t, const std::vector<int32_t>& ids) {
  for (bool skip : {false, true})
    if (!tok::utf8_valid(t.decode(ids, skip))) fail("decode produced invalid UTF-8");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<Tokenizer> pipelines = build_pipelines();
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 3;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode == 0) {
    auto t = Tokenizer::from_json(rest);
    if (!t) {
      if (t.status().message().empty()) fail("error without a message");
      return 0;
    }
    for (std::string_view s : {"Hello world", "  <s> x\n\n123 \xF0\x9F\x98\x80 caf\xC3\xA9 \xFF", ""}) {
      auto ids = t->encode(s, true);
      check_ids(t.value(), ids);
      check_decode(t.value(), ids);
    }
    return 0;
  }
  if (mode == 1) {
    for (size_t k = 0; k < pipelines.size(); ++k) {
      const Tokenizer& t = pipelines[k];
      for (bool add : {false, true})
        for (bool parse : {false, true}) {
          auto ids = t.encode(rest, add, parse);
          check_ids(t, ids);
          check_decode(t, ids);
          // Byte-level round trip: exact for valid text (NFC may recompose it).
          if (k == 0 && !add && !parse && tok::utf8_valid(rest) &&
              t.decode(ids, false) != tok::normalize(rest, tok::NormForm::kNFC))
            fail("byte-level round trip");
        }
    }
    return 0;
  }
  std::vector<int32_t> ids(rest.size() / 4);
  if (!ids.empty()) std::memcpy(ids.data(), rest.data(), ids.size() * 4);
  for (const Tokenizer& t : pipelines) check_decode(t, ids);
  return 0;
}

// Pre-tokenizers: split normalized text into words before the model sees it (HF
// `pre_tokenizers`). Each one rewrites a list of pieces; empty pieces are always dropped, as in
// HF's PreTokenizedString::split.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/regex.h"

namespace nibble::tok {

struct Piece {
  std::string text;  // UTF-8 (after ByteLevel: the byte-to-unicode alphabet)
  bool at_origin;    // starts at offset 0 of the original input (Metaspace prepend_scheme=first)
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
enum class PrependScheme { kAlways, kFirst, kNever };

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their split (and for ByteLevel, transformed) pieces.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};
using PreTokenizerPtr = std::shared_ptr<const PreTokenizer>;

// Split on `regex` matches, or on occurrences of `literal` when regex is empty.
PreTokenizerPtr make_split_pre_tokenizer(std::string literal, std::optional<Regex> regex,
                                         SplitBehavior behavior, bool invert);
// GPT-2 style: optional " " prefix, optional GPT-2 regex split, then bytes -> printable chars.
PreTokenizerPtr make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex);
PreTokenizerPtr make_metaspace_pre_tokenizer(std::string replacement, PrependScheme scheme,
                                             bool split);
PreTokenizerPtr make_digits_pre_tokenizer(bool individual_digits);
PreTokenizerPtr make_punctuation_pre_tokenizer(SplitBehavior behavior);
PreTokenizerPtr make_whitespace_pre_tokenizer();        // \w+|[^\w\s]+ kept, rest dropped
PreTokenizerPtr make_whitespace_split_pre_tokenizer();  // split on White_Space, dropped
PreTokenizerPtr make_bert_pre_tokenizer();              // WhitespaceSplit, then punctuation
PreTokenizerPtr make_char_delimiter_pre_tokenizer(char32_t delimiter);
PreTokenizerPtr make_sequence_pre_tokenizer(std::vector<PreTokenizerPtr> parts);

// The GPT-2 pre-tokenization regex, used by ByteLevel with use_regex.
extern const char* const kGpt2Pattern;

// ByteLevel's byte -> code point table: printable bytes map to themselves, the other 68 to
// U+0100.. in byte order. byte_level_decode maps back (-1 where a code point is not in the
// table).
char32_t byte_to_unicode(uint8_t b);
int byte_level_decode(char32_t c);
// Appends the byte-level spelling of raw bytes `s` to `out`.
void byte_level_encode(std::string_view s, std::string& out);

}  // namespace nibble::tok

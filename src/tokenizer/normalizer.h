// Normalizers: string -> string rewrites applied to each piece of text that is not an added
// token, before pre-tokenization (HF `normalizers`). Offsets are not tracked: generation needs
// ids, not alignments.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace nibble::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};
using NormalizerPtr = std::shared_ptr<const Normalizer>;

NormalizerPtr make_unicode_normalizer(NormForm form);   // NFC, NFD, NFKC, NFKD
NormalizerPtr make_lowercase_normalizer();
NormalizerPtr make_strip_normalizer(bool left, bool right);  // strips White_Space
NormalizerPtr make_strip_accents_normalizer();               // drops marks (Mn, Mc, Me)
NormalizerPtr make_prepend_normalizer(std::string prefix);   // only to non-empty strings
// Replaces every non-overlapping occurrence of `literal` (or match of `regex` when set).
NormalizerPtr make_replace_normalizer(std::string literal, std::optional<Regex> regex,
                                      std::string content);
NormalizerPtr make_sequence_normalizer(std::vector<NormalizerPtr> parts);

// Literal or regex replace-all, shared by the Replace normalizer and the Replace decoder.
std::string replace_all(const std::string& s, const std::string& literal,
                        const std::optional<Regex>& regex, const std::string& content);

}  // namespace nibble::tok

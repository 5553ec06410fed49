// A compiled regular expression for pre-tokenizer splits and Replace normalizers: PCRE2 in
// UTF + UCP mode, JIT-compiled. HF tokenizers uses Oniguruma; the patterns found in
// tokenizer.json files (\p{L}, \p{N}, (?i:...), (?!\S)) mean the same in both once `\s` is
// widened to Unicode White_Space (see translate_pattern in regex.cpp).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace nibble::tok {

class Regex {
 public:
  static Result<Regex> compile(std::string_view pattern);

  // Appends the [begin, end) byte ranges of all non-overlapping matches in `s`, left to right.
  // `s` must be valid UTF-8. An empty match is reported and the search resumes one character
  // later (as Oniguruma's iterator does).
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string pattern_;
};

}  // namespace nibble::tok

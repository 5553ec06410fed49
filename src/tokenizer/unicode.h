// UTF-8 helpers and the few Unicode facts the tokenizer needs (through ICU). All strings are
// UTF-8 in std::string; code points are char32_t.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nibble::tok {

// Length in bytes of the UTF-8 sequence starting with lead byte `b` (1 for invalid leads, so
// that loops over sanitized text always advance).
inline size_t utf8_len(uint8_t b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i past it.
inline char32_t utf8_next(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  size_t n = utf8_len(p[0]);
  if (i + n > s.size()) n = 1;
  i += n;
  switch (n) {
    case 2: return char32_t(((p[0] & 0x1F) << 6) | (p[1] & 0x3F));
    case 3: return char32_t(((p[0] & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F));
    case 4:
      return char32_t(((p[0] & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) |
                      (p[3] & 0x3F));
    default: return p[0];
  }
}

// Decodes the code point that ends at s[i) (s valid UTF-8, i > 0).
char32_t utf8_prev(std::string_view s, size_t i);

void utf8_append(std::string& out, char32_t c);

// True when s is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool utf8_valid(std::string_view s);

// s with every maximal invalid subsequence replaced by U+FFFD: the Unicode "substitution of
// maximal subparts" practice that Rust's String::from_utf8_lossy and Python's
// decode("utf-8", errors="replace") both follow.
std::string utf8_lossy(std::string_view s);

// Unicode properties, matching Rust's char methods (which HF tokenizers uses).
bool is_white_space(char32_t c);   // White_Space (char::is_whitespace, regex \s)
bool is_alphanumeric(char32_t c);  // Alphabetic or Nd/Nl/No (char::is_alphanumeric)
bool is_word_char(char32_t c);     // regex \w: Alphabetic, M, Nd, Pc, Join_Control
bool is_numeric(char32_t c);       // general category Nd/Nl/No (char::is_numeric)
bool is_punctuation(char32_t c);   // ASCII punctuation or general category P*
bool is_mark(char32_t c);  // general category M (Mn, Mc, Me): unicode-normalization's is_combining_mark

enum class NormForm { kNFC, kNFD, kNFKC, kNFKD };
// s normalized (s valid UTF-8). ASCII-only input is returned unchanged without calling ICU.
std::string normalize(std::string_view s, NormForm form);

// Rust char::to_lowercase applied per code point (full mapping, no final-sigma context).
std::string to_lowercase(std::string_view s);

}  // namespace nibble::tok

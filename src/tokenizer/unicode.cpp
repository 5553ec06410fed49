#include "tokenizer/unicode.h"

#include <memory>
#include <vector>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

namespace nibble::tok {

namespace {

// Length of the valid UTF-8 sequence at p[0..n), or the length of its maximal invalid prefix
// negated (at least 1), following Table 3-7 of the Unicode standard (well-formed sequences).
int utf8_scan(const uint8_t* p, size_t n) {
  uint8_t b = p[0];
  if (b < 0x80) return 1;
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;  // no surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (size_t(k) >= n) return -k;
    uint8_t c = p[k];
    uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) return -k;
  }
  return need + 1;
}

}  // namespace

char32_t utf8_prev(std::string_view s, size_t i) {
  size_t j = i - 1;
  while (j > 0 && (uint8_t(s[j]) & 0xC0) == 0x80 && i - j < 4) --j;
  size_t k = j;
  return utf8_next(s, k);
}

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(char(c));
  } else if (c < 0x800) {
    out.push_back(char(0xC0 | (c >> 6)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(char(0xE0 | (c >> 12)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (c >> 18)));
    out.push_back(char(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  }
}

bool utf8_valid(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0, n = s.size();
  while (i < n) {
    // ASCII fast path: 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      __builtin_memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    int r = utf8_scan(p + i, n - i);
    if (r < 0) return false;
    i += size_t(r);
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0, n = s.size();
  while (i < n) {
    int r = utf8_scan(p + i, n - i);
    if (r > 0) {
      out.append(s.data() + i, size_t(r));
      i += size_t(r);
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal invalid subpart
      i += size_t(-r);
    }
  }
  return out;
}

bool is_white_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return u_isUWhiteSpace(UChar32(c));
}

bool is_alphanumeric(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
  if (u_hasBinaryProperty(UChar32(c), UCHAR_ALPHABETIC)) return true;
  int8_t t = u_charType(UChar32(c));
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  int8_t t = u_charType(UChar32(c));
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}

bool is_word_char(char32_t c) {
  if (c < 0x80)
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_';
  if (u_hasBinaryProperty(UChar32(c), UCHAR_ALPHABETIC) ||
      u_hasBinaryProperty(UChar32(c), UCHAR_JOIN_CONTROL))
    return true;
  int8_t t = u_charType(UChar32(c));
  return t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_COMBINING_SPACING_MARK ||
         t == U_DECIMAL_DIGIT_NUMBER || t == U_CONNECTOR_PUNCTUATION;
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) ||
                       (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
  int8_t t = u_charType(UChar32(c));
  return t == U_CONNECTOR_PUNCTUATION || t == U_DASH_PUNCTUATION || t == U_START_PUNCTUATION ||
         t == U_END_PUNCTUATION || t == U_INITIAL_PUNCTUATION || t == U_FINAL_PUNCTUATION ||
         t == U_OTHER_PUNCTUATION;
}

bool is_mark(char32_t c) {
  int8_t t = u_charType(UChar32(c));
  return t == U_NON_SPACING_MARK || t == U_COMBINING_SPACING_MARK || t == U_ENCLOSING_MARK;
}

namespace {

bool is_ascii(std::string_view s) {
  for (char ch : s)
    if (uint8_t(ch) >= 0x80) return false;
  return true;
}

const UNormalizer2* norm_instance(NormForm form, UErrorCode* err) {
  switch (form) {
    case NormForm::kNFC: return unorm2_getNFCInstance(err);
    case NormForm::kNFD: return unorm2_getNFDInstance(err);
    case NormForm::kNFKC: return unorm2_getNFKCInstance(err);
    case NormForm::kNFKD: return unorm2_getNFKDInstance(err);
  }
  return nullptr;
}

std::u16string to_utf16(std::string_view s) {
  std::u16string w(s.size() + 1, u'\0');
  int32_t len = 0;
  UErrorCode err = U_ZERO_ERROR;
  u_strFromUTF8(reinterpret_cast<UChar*>(w.data()), int32_t(w.size()), &len, s.data(),
                int32_t(s.size()), &err);
  w.resize(U_SUCCESS(err) ? size_t(len) : 0);
  return w;
}

std::string to_utf8(const std::u16string& w) {
  std::string s(w.size() * 3 + 1, '\0');
  int32_t len = 0;
  UErrorCode err = U_ZERO_ERROR;
  u_strToUTF8(s.data(), int32_t(s.size()), &len, reinterpret_cast<const UChar*>(w.data()),
              int32_t(w.size()), &err);
  s.resize(U_SUCCESS(err) ? size_t(len) : 0);
  return s;
}

}  // namespace

std::string normalize(std::string_view s, NormForm form) {
  // ASCII is invariant under all four forms; most prose never reaches ICU.
  if (is_ascii(s)) return std::string(s);
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* n = norm_instance(form, &err);
  if (U_FAILURE(err) || n == nullptr) return std::string(s);
  std::u16string src = to_utf16(s);
  // Decompositions grow text by at most a factor of 18 per code unit (UAX #15 bounds NFKD
  // growth); start at 2x and let ICU tell us the size on overflow.
  std::u16string dst(src.size() * 2 + 16, u'\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    err = U_ZERO_ERROR;
    int32_t len = unorm2_normalize(n, reinterpret_cast<const UChar*>(src.data()),
                                   int32_t(src.size()), reinterpret_cast<UChar*>(dst.data()),
                                   int32_t(dst.size()), &err);
    if (err == U_BUFFER_OVERFLOW_ERROR) {
      dst.assign(size_t(len) + 1, u'\0');
      continue;
    }
    if (U_FAILURE(err)) return std::string(s);
    dst.resize(size_t(len));
    return to_utf8(dst);
  }
  return std::string(s);
}

std::string to_lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char32_t c = utf8_next(s, i);
    if (c < 0x80) {
      out.push_back(char(c >= 'A' && c <= 'Z' ? c + 32 : c));
    } else if (c == 0x130) {
      // The one unconditional multi-character lowercase mapping (SpecialCasing.txt):
      // LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + COMBINING DOT ABOVE.
      out += "i\xCC\x87";
    } else {
      utf8_append(out, char32_t(u_tolower(UChar32(c))));
    }
  }
  return out;
}

}  // namespace nibble::tok

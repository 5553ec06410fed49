#include "template/lexer.h"

#include <cstring>

#include "template/text.h"
#include "template/value.h"

namespace nibble::tpl {
namespace {

// Jinja's `\s` in its lexer regexes is Python's Unicode whitespace; decode one code point.
size_t space_len(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return is_py_space(c) ? 1 : 0;
  size_t n = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + n > s.size()) return 0;
  std::u32string u = decode_utf8(s.substr(i, n));
  return (u.size() == 1 && is_py_space(u[0])) ? n : 0;
}

size_t skip_spaces(std::string_view s, size_t i) {
  while (size_t n = space_len(s, i)) i += n;
  return i;
}

// text.rstrip() with Python's whitespace set.
void rstrip_py(std::string& text) {
  std::u32string u = decode_utf8(text);
  size_t e = u.size();
  while (e > 0 && is_py_space(u[e - 1])) --e;
  if (e != u.size()) text = encode_utf8(std::u32string_view(u).substr(0, e));
}

// Jinja 3 joins the source's lines with "\n" (so \r\n and \r become \n) and, without
// keep_trailing_newline, drops one trailing newline.
std::string normalize_newlines(std::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string src) : s_(std::move(src)) {}

  std::vector<Token> run() {
    bool line_starting = true;  // did the previous tag's match end with a newline?
    while (pos_ < s_.size()) {
      size_t open = find_tag_start(pos_);
      std::string text = s_.substr(pos_, open - pos_);
      int text_line = line_at(pos_);
      if (open == s_.size()) {
        emit_data(std::move(text), text_line);
        break;
      }
      char kind = s_[open + 1];  // '{', '%' or '#'
      char sign = open + 2 < s_.size() && (s_[open + 2] == '-' || s_[open + 2] == '+') ? s_[open + 2] : 0;
      bool raw = kind == '%' && is_raw_begin(open);
      if (sign == '-') {
        rstrip_py(text);
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: drop spaces between the line start and a block or comment tag.
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() && skip_spaces(text, l_pos) == text.size())
          text.resize(l_pos);
      }
      emit_data(std::move(text), text_line);
      size_t after = open + 2 + (sign ? 1 : 0);
      if (raw) {
        line_starting = lex_raw(open, after);
      } else if (kind == '#') {
        line_starting = lex_comment(open, after);
      } else {
        line_starting = lex_tag(kind == '{', after);
      }
    }
    out_.push_back({Tok::kEof, "", line_at(s_.size())});
    return std::move(out_);
  }

 private:
  int line_at(size_t pos) {
    // Positions only move forward, so count newlines incrementally.
    while (line_pos_ < pos && line_pos_ < s_.size()) {
      if (s_[line_pos_] == '\n') ++line_;
      ++line_pos_;
    }
    return line_;
  }

  [[noreturn]] void error(size_t pos, const std::string& msg) { throw TemplateError{line_at(pos), msg, false}; }

  size_t find_tag_start(size_t from) const {
    for (size_t i = from; i + 1 < s_.size(); ++i)
      if (s_[i] == '{' && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    return s_.size();
  }

  void emit_data(std::string text, int line) {
    if (!text.empty()) out_.push_back({Tok::kData, std::move(text), line});
  }

  // `{%[-+]? raw [-]?%}`
  bool is_raw_begin(size_t open) const {
    size_t i = open + 2;
    if (i < s_.size() && (s_[i] == '-' || s_[i] == '+')) ++i;
    i = skip_spaces(s_, i);
    if (s_.compare(i, 3, "raw") != 0) return false;
    i = skip_spaces(s_, i + 3);
    if (i < s_.size() && s_[i] == '-') ++i;
    return s_.compare(i, 2, "%}") == 0;
  }

  // Applies the tag end's whitespace rule at `i` (just past %} / #} / }}) and returns
  // the new position; `block` enables trim_blocks, `strip` is a '-' before the end.
  size_t after_end(size_t i, bool block, bool strip, bool plus) {
    if (strip) return skip_spaces(s_, i);
    if (block && !plus && i < s_.size() && s_[i] == '\n') return i + 1;
    return i;
  }

  bool lex_raw(size_t open, size_t after) {
    int line = line_at(open);
    size_t i = skip_spaces(s_, after) + 3;  // past "raw"
    i = skip_spaces(s_, i);
    bool strip = s_[i] == '-';
    i += strip ? 3 : 2;
    if (strip) i = skip_spaces(s_, i);  // raw begin never trims a newline (no trim_blocks there)
    // Body runs to the first {%[-+]? endraw ... %}
    for (size_t j = i; j + 1 < s_.size(); ++j) {
      if (s_[j] != '{' || s_[j + 1] != '%') continue;
      size_t k = j + 2;
      char sign = k < s_.size() && (s_[k] == '-' || s_[k] == '+') ? s_[k] : 0;
      if (sign) ++k;
      k = skip_spaces(s_, k);
      if (s_.compare(k, 6, "endraw") != 0) continue;
      k = skip_spaces(s_, k + 6);
      bool end_strip = false, end_plus = false;
      if (k < s_.size() && (s_[k] == '-' || s_[k] == '+')) {
        end_strip = s_[k] == '-';
        end_plus = s_[k] == '+';
        ++k;
      }
      if (s_.compare(k, 2, "%}") != 0) continue;
      std::string body = s_.substr(i, j - i);
      if (sign == '-') rstrip_py(body);
      emit_data(std::move(body), line);
      size_t end = after_end(k + 2, true, end_strip, end_plus);
      pos_ = end;
      return end > 0 && s_[end - 1] == '\n';
    }
    error(open, "missing end of raw directive");
  }

  bool lex_comment(size_t open, size_t after) {
    for (size_t j = after; j + 1 < s_.size(); ++j) {
      // The lazy match in Jinja's regex stops at "-#}" before it would see "#}".
      if (s_[j] == '-' && s_.compare(j + 1, 2, "#}") == 0) {
        pos_ = after_end(j + 3, true, true, false);
        return pos_ > 0 && s_[pos_ - 1] == '\n';
      }
      if (s_[j] == '+' && s_.compare(j + 1, 2, "#}") == 0) {
        pos_ = j + 3;
        return false;
      }
      if (s_[j] == '#' && s_[j + 1] == '}') {
        pos_ = after_end(j + 2, true, false, false);
        return pos_ > 0 && s_[pos_ - 1] == '\n';
      }
    }
    error(open, "missing end of comment tag");
  }

  bool lex_tag(bool variable, size_t i);
  size_t lex_string(size_t i);
  size_t lex_number(size_t i);

  std::string s_;
  size_t pos_ = 0;
  size_t line_pos_ = 0;
  int line_ = 1;
  std::vector<Token> out_;
};

bool Lexer::lex_tag(bool variable, size_t i) {
  int begin_line = line_at(i);
  out_.push_back({variable ? Tok::kVarBegin : Tok::kBlockBegin, "", begin_line});
  std::vector<char> balance;  // open brackets: an end marker inside them is an operator
  const char end_char = variable ? '}' : '%';
  while (true) {
    i = skip_spaces(s_, i);
    if (i >= s_.size()) error(i, variable ? "unexpected end of template, expected '}}'" : "unexpected end of template, expected '%}'");
    int line = line_at(i);
    char c = s_[i];
    if (balance.empty()) {
      bool strip = c == '-' && i + 2 < s_.size() + 0 && s_[i + 1] == end_char && s_[i + 2] == '}';
      bool plus = !variable && c == '+' && i + 2 < s_.size() && s_[i + 1] == '%' && s_[i + 2] == '}';
      bool plain = c == end_char && i + 1 < s_.size() && s_[i + 1] == '}';
      if (strip || plus || plain) {
        size_t end = i + (plain ? 2 : 3);
        out_.push_back({variable ? Tok::kVarEnd : Tok::kBlockEnd, "", line});
        pos_ = after_end(end, !variable, strip, plus);
        return pos_ > 0 && s_[pos_ - 1] == '\n';
      }
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[j])) || s_[j] == '_')) ++j;
      out_.push_back({Tok::kName, s_.substr(i, j - i), line});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      i = lex_number(i);
    } else if (c == '\'' || c == '"') {
      i = lex_string(i);
    } else {
      static const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "(", ")", "[",
                                   "]", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";"};
      const char* op = nullptr;
      for (const char* o : kOps)
        if (s_.compare(i, std::strlen(o), o) == 0) {
          op = o;
          break;
        }
      if (!op) error(i, std::string("unexpected character '") + c + "'");
      std::string o(op);
      if (o == "(" || o == "[" || o == "{") {
        balance.push_back(o == "(" ? ')' : o == "[" ? ']' : '}');
        if (balance.size() > 256) error(i, "brackets nested too deeply");
      } else if (o == ")" || o == "]" || o == "}") {
        if (balance.empty()) error(i, "unexpected '" + o + "'");
        if (balance.back() != o[0]) error(i, "unexpected '" + o + "', expected '" + balance.back() + "'");
        balance.pop_back();
      }
      out_.push_back({Tok::kOp, o, line});
      i += o.size();
    }
  }
}

size_t Lexer::lex_string(size_t i) {
  int line = line_at(i);
  char q = s_[i];
  std::string v;
  size_t j = i + 1;
  // Jinja decodes literals with Python's "unicode-escape": known escapes are decoded, an
  // unknown one (like \d) stays as written.
  for (; j < s_.size() && s_[j] != q; ++j) {
    char c = s_[j];
    if (c != '\\') {
      v.push_back(c);
      continue;
    }
    if (++j >= s_.size()) break;
    char e = s_[j];
    auto hex = [&](int n) -> bool {
      if (j + n >= s_.size()) return false;
      char32_t cp = 0;
      for (int k = 1; k <= n; ++k) {
        char h = s_[j + k];
        if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
        cp = cp * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      append_utf8(v, cp);
      j += n;
      return true;
    };
    switch (e) {
      case 'n': v.push_back('\n'); break;
      case 't': v.push_back('\t'); break;
      case 'r': v.push_back('\r'); break;
      case '\\': v.push_back('\\'); break;
      case '\'': v.push_back('\''); break;
      case '"': v.push_back('"'); break;
      case 'a': v.push_back('\a'); break;
      case 'b': v.push_back('\b'); break;
      case 'f': v.push_back('\f'); break;
      case 'v': v.push_back('\v'); break;
      case '\n': break;  // backslash-newline is a line continuation
      case 'x':
        if (!hex(2)) error(j, "invalid \\x escape in string literal");
        break;
      case 'u':
        if (!hex(4)) error(j, "invalid \\u escape in string literal");
        break;
      case 'U':
        if (!hex(8)) error(j, "invalid \\U escape in string literal");
        break;
      default:
        if (e >= '0' && e <= '7') {
          int val = 0, n = 0;
          while (n < 3 && j < s_.size() && s_[j] >= '0' && s_[j] <= '7') val = val * 8 + (s_[j++] - '0'), ++n;
          --j;
          append_utf8(v, static_cast<char32_t>(val));
        } else {
          v.push_back('\\');
          v.push_back(e);
        }
    }
  }
  if (j >= s_.size()) error(i, "unterminated string literal");
  out_.push_back({Tok::kString, std::move(v), line});
  return j + 1;
}

size_t Lexer::lex_number(size_t i) {
  int line = line_at(i);
  auto digits = [&](size_t j, std::string& out) {
    // \d+ with single underscores between digits, as in Python literals.
    size_t start = j;
    while (j < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[j])) ||
                             (s_[j] == '_' && j > start && j + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[j + 1]))))) {
      if (s_[j] != '_') out.push_back(s_[j]);
      ++j;
    }
    return j;
  };
  std::string num;
  size_t j = digits(i, num);
  bool is_float = false;
  if (j + 1 < s_.size() && s_[j] == '.' && std::isdigit(static_cast<unsigned char>(s_[j + 1]))) {
    num.push_back('.');
    j = digits(j + 1, num);
    is_float = true;
  }
  if (j < s_.size() && (s_[j] == 'e' || s_[j] == 'E')) {
    size_t k = j + 1;
    std::string exp = "e";
    if (k < s_.size() && (s_[k] == '+' || s_[k] == '-')) exp.push_back(s_[k++]);
    if (k < s_.size() && std::isdigit(static_cast<unsigned char>(s_[k]))) {
      j = digits(k, exp);
      num += exp;
      is_float = true;
    }
  }
  out_.push_back({is_float ? Tok::kFloat : Tok::kInt, num, line});
  return j;
}

}  // namespace

std::vector<Token> lex_template(std::string_view source) {
  if (!valid_utf8(source)) throw TemplateError{1, "chat template is not valid UTF-8", false};
  return Lexer(normalize_newlines(source)).run();
}

}  // namespace nibble::tpl

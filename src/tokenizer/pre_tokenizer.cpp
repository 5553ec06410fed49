#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <array>
#include <functional>

#include "tokenizer/unicode.h"

namespace nibble::tok {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// One stretch of a piece: [b, e) bytes, and whether the pattern matched it. A list of spans
// covers its piece exactly, in order (HF's Pattern::find_matches).
struct Span {
  size_t b, e;
  bool is_match;
};

struct ByteTables {
  std::array<char32_t, 256> to_cp{};
  std::array<int16_t, 512> from_cp{};      // code points < 512 -> byte, or -1
  std::array<std::array<char, 2>, 256> utf8{};  // UTF-8 of to_cp[b] (1 or 2 bytes)
  std::array<uint8_t, 256> utf8_len{};
  ByteTables() {
    from_cp.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      char32_t cp = printable ? char32_t(b) : char32_t(next++);
      to_cp[b] = cp;
      from_cp[cp] = int16_t(b);
      if (cp < 0x80) {
        utf8[b] = {char(cp), 0};
        utf8_len[b] = 1;
      } else {
        utf8[b] = {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
        utf8_len[b] = 2;
      }
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}

// Applies HF's SplitDelimiterBehavior to `spans` and appends the kept, non-empty pieces.
void emit_split(const Piece& p, std::vector<Span>& spans, SplitBehavior behavior, bool invert,
                std::vector<Piece>& out) {
  if (invert)
    for (auto& s : spans) s.is_match = !s.is_match;
  std::vector<Span> keep;
  keep.reserve(spans.size());
  bool prev = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      keep = spans;
      break;
    case SplitBehavior::kRemoved:
      for (auto& s : spans)
        if (!s.is_match) keep.push_back(s);
      break;
    case SplitBehavior::kContiguous:
      for (auto& s : spans) {
        if (s.is_match == prev && !keep.empty()) keep.back().e = s.e;
        else keep.push_back(s);
        prev = s.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (auto& s : spans) {
        if (s.is_match && !prev && !keep.empty()) keep.back().e = s.e;
        else keep.push_back(s);
        prev = s.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t k = spans.size(); k-- > 0;) {
        const Span& s = spans[k];
        if (s.is_match && !prev && !keep.empty()) keep.back().b = s.b;
        else keep.push_back(s);
        prev = s.is_match;
      }
      std::reverse(keep.begin(), keep.end());
      break;
  }
  for (const Span& s : keep) {
    if (s.e <= s.b) continue;
    out.push_back(Piece{p.text.substr(s.b, s.e - s.b), p.at_origin && s.b == 0});
  }
}

// Spans where every code point satisfying `pred` is its own one-character match.
void char_spans(std::string_view s, const std::function<bool(char32_t)>& pred,
                std::vector<Span>& spans) {
  size_t last = 0, i = 0;
  while (i < s.size()) {
    size_t b = i;
    char32_t c = utf8_next(s, i);
    if (pred(c)) {
      if (last < b) spans.push_back({last, b, false});
      spans.push_back({b, i, true});
      last = i;
    }
  }
  if (last < s.size()) spans.push_back({last, s.size(), false});
}

// Spans from a list of matches (which are ordered and non-overlapping).
void match_spans(size_t len, const std::vector<std::pair<size_t, size_t>>& m,
                 std::vector<Span>& spans) {
  size_t prev = 0;
  for (auto [b, e] : m) {
    if (prev != b) spans.push_back({prev, b, false});
    spans.push_back({b, e, true});
    prev = e;
  }
  if (prev != len) spans.push_back({prev, len, false});
}

// Runs every piece through `fn(piece, out)`.
template <typename Fn>
void for_each_piece(std::vector<Piece>& pieces, Fn&& fn) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  for (const Piece& p : pieces) fn(p, out);
  pieces = std::move(out);
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::string lit, std::optional<Regex> re, SplitBehavior b, bool inv)
      : literal_(std::move(lit)), regex_(std::move(re)), behavior_(b), invert_(inv) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<std::pair<size_t, size_t>> m;
    std::vector<Span> spans;
    for_each_piece(pieces, [&](const Piece& p, std::vector<Piece>& out) {
      m.clear();
      spans.clear();
      if (regex_) {
        regex_->find_all(p.text, m);
      } else if (!literal_.empty()) {
        for (size_t at = p.text.find(literal_); at != std::string::npos;
             at = p.text.find(literal_, at + literal_.size()))
          m.emplace_back(at, at + literal_.size());
      }
      match_spans(p.text.size(), m, spans);
      emit_split(p, spans, behavior_, invert_, out);
    });
  }

 private:
  std::string literal_;
  std::optional<Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool prefix, std::optional<Regex> re)
      : add_prefix_space_(prefix), regex_(std::move(re)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, 1, ' ');
    }
    if (regex_) {
      std::vector<std::pair<size_t, size_t>> m;
      std::vector<Span> spans;
      for_each_piece(pieces, [&](const Piece& p, std::vector<Piece>& out) {
        m.clear();
        spans.clear();
        regex_->find_all(p.text, m);
        match_spans(p.text.size(), m, spans);
        emit_split(p, spans, SplitBehavior::kIsolated, false, out);
      });
    }
    std::string buf;
    for (Piece& p : pieces) {
      buf.clear();
      byte_level_encode(p.text, buf);
      p.text.swap(buf);
    }
  }

 private:
  bool add_prefix_space_;
  std::optional<Regex> regex_;
};

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string rep, PrependScheme s, bool split)
      : rep_(std::move(rep)), scheme_(s), split_(split) {
    size_t i = 0;
    rep_cp_ = rep_.empty() ? 0 : utf8_next(rep_, i);
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Span> spans;
    for_each_piece(pieces, [&](const Piece& in, std::vector<Piece>& out) {
      Piece p{replace_all(in.text, " ", rep_), in.at_origin};
      bool starts = p.text.compare(0, rep_.size(), rep_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways ||
                      (scheme_ == PrependScheme::kFirst && p.at_origin)))
        p.text.insert(0, rep_);
      if (!split_) {
        if (!p.text.empty()) out.push_back(std::move(p));
        return;
      }
      spans.clear();
      char32_t r = rep_cp_;
      char_spans(p.text, [r](char32_t c) { return c == r; }, spans);
      emit_split(p, spans, SplitBehavior::kMergedWithNext, false, out);
    });
  }

 private:
  static std::string replace_all(const std::string& s, std::string_view from,
                                 const std::string& to) {
    std::string out;
    out.reserve(s.size() + 8);
    for (char c : s) {
      if (c == from[0]) out += to;
      else out += c;
    }
    return out;
  }
  std::string rep_;
  char32_t rep_cp_;
  PrependScheme scheme_;
  bool split_;
};

// Splits on a code point predicate with a fixed behaviour: Digits, Punctuation,
// WhitespaceSplit, CharDelimiterSplit.
class PredicatePreTokenizer final : public PreTokenizer {
 public:
  PredicatePreTokenizer(std::function<bool(char32_t)> pred, SplitBehavior b)
      : pred_(std::move(pred)), behavior_(b) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Span> spans;
    for_each_piece(pieces, [&](const Piece& p, std::vector<Piece>& out) {
      spans.clear();
      char_spans(p.text, pred_, spans);
      emit_split(p, spans, behavior_, false, out);
    });
  }

 private:
  std::function<bool(char32_t)> pred_;
  SplitBehavior behavior_;
};

class WhitespacePreTokenizer final : public PreTokenizer {
 public:
  // Keeps maximal runs of \w and maximal runs of [^\w\s]; drops whitespace.
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for_each_piece(pieces, [&](const Piece& p, std::vector<Piece>& out) {
      const std::string& s = p.text;
      size_t i = 0, run_b = 0;
      int run_kind = -1;  // 0 word, 1 other, -1 none
      auto flush = [&](size_t end) {
        if (run_kind >= 0 && end > run_b)
          out.push_back(Piece{s.substr(run_b, end - run_b), p.at_origin && run_b == 0});
      };
      while (i < s.size()) {
        size_t b = i;
        char32_t c = utf8_next(s, i);
        int kind = is_word_char(c) ? 0 : is_white_space(c) ? -1 : 1;
        if (kind != run_kind) {
          flush(b);
          run_kind = kind;
          run_b = b;
        }
      }
      flush(s.size());
    });
  }
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<PreTokenizerPtr> p) : parts_(std::move(p)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<PreTokenizerPtr> parts_;
};

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return byte_tables().to_cp[b]; }

int byte_level_decode(char32_t c) { return c < 512 ? byte_tables().from_cp[c] : -1; }

void byte_level_encode(std::string_view s, std::string& out) {
  const ByteTables& t = byte_tables();
  out.reserve(out.size() + s.size() * 2);
  for (char ch : s) {
    auto b = uint8_t(ch);
    out.append(t.utf8[b].data(), t.utf8_len[b]);
  }
}

PreTokenizerPtr make_split_pre_tokenizer(std::string literal, std::optional<Regex> regex,
                                         SplitBehavior behavior, bool invert) {
  return std::make_shared<SplitPreTokenizer>(std::move(literal), std::move(regex), behavior,
                                             invert);
}

PreTokenizerPtr make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex) {
  std::optional<Regex> re;
  if (use_regex) re = Regex::compile(kGpt2Pattern).value();  // a constant known to compile
  return std::make_shared<ByteLevelPreTokenizer>(add_prefix_space, std::move(re));
}

PreTokenizerPtr make_metaspace_pre_tokenizer(std::string replacement, PrependScheme scheme,
                                             bool split) {
  return std::make_shared<MetaspacePreTokenizer>(std::move(replacement), scheme, split);
}

PreTokenizerPtr make_digits_pre_tokenizer(bool individual_digits) {
  return std::make_shared<PredicatePreTokenizer>(
      is_numeric,  // HF uses char::is_numeric: Roman numerals and ½ count too
      individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
}

PreTokenizerPtr make_punctuation_pre_tokenizer(SplitBehavior behavior) {
  return std::make_shared<PredicatePreTokenizer>(is_punctuation, behavior);
}

PreTokenizerPtr make_whitespace_pre_tokenizer() {
  return std::make_shared<WhitespacePreTokenizer>();
}

PreTokenizerPtr make_whitespace_split_pre_tokenizer() {
  return std::make_shared<PredicatePreTokenizer>(is_white_space, SplitBehavior::kRemoved);
}

PreTokenizerPtr make_bert_pre_tokenizer() {
  return make_sequence_pre_tokenizer(
      {make_whitespace_split_pre_tokenizer(),
       make_punctuation_pre_tokenizer(SplitBehavior::kIsolated)});
}

PreTokenizerPtr make_char_delimiter_pre_tokenizer(char32_t delimiter) {
  return std::make_shared<PredicatePreTokenizer>(
      [delimiter](char32_t c) { return c == delimiter; }, SplitBehavior::kRemoved);
}

PreTokenizerPtr make_sequence_pre_tokenizer(std::vector<PreTokenizerPtr> parts) {
  return std::make_shared<SequencePreTokenizer>(std::move(parts));
}

}  // namespace nibble::tok

#include "tokenizer/normalizer.h"

namespace nibble::tok {

std::string replace_all(const std::string& s, const std::string& literal,
                        const std::optional<Regex>& regex, const std::string& content) {
  std::string out;
  size_t prev = 0;
  if (regex) {
    std::vector<std::pair<size_t, size_t>> m;
    regex->find_all(s, m);
    if (m.empty()) return s;
    for (auto [b, e] : m) {
      out.append(s, prev, b - prev);
      out += content;
      prev = e;
    }
  } else {
    if (literal.empty()) return s;
    size_t at = s.find(literal);
    if (at == std::string::npos) return s;
    for (; at != std::string::npos; at = s.find(literal, prev)) {
      out.append(s, prev, at - prev);
      out += content;
      prev = at + literal.size();
    }
  }
  out.append(s, prev, std::string::npos);
  return out;
}

namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormForm f) : form_(f) {}
  void normalize(std::string& s) const override { s = tok::normalize(s, form_); }

 private:
  NormForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override { s = to_lowercase(s); }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool l, bool r) : left_(l), right_(r) {}
  void normalize(std::string& s) const override {
    size_t b = 0, e = s.size();
    if (left_) {
      while (b < e) {
        size_t j = b;
        if (!is_white_space(utf8_next(s, j))) break;
        b = j;
      }
    }
    if (right_) {
      while (e > b) {
        char32_t c = utf8_prev(s, e);
        if (!is_white_space(c)) break;
        size_t w = 1;
        while ((uint8_t(s[e - w]) & 0xC0) == 0x80) ++w;
        e -= w;
      }
    }
    s = s.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

class StripAccentsNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
      size_t start = i;
      char32_t c = utf8_next(s, i);
      if (c < 0x80 || !is_mark(c)) out.append(s, start, i - start);
    }
    s = std::move(out);
  }
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string p) : prefix_(std::move(p)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string lit, std::optional<Regex> re, std::string content)
      : literal_(std::move(lit)), regex_(std::move(re)), content_(std::move(content)) {}
  void normalize(std::string& s) const override { s = replace_all(s, literal_, regex_, content_); }

 private:
  std::string literal_;
  std::optional<Regex> regex_;
  std::string content_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<NormalizerPtr> p) : parts_(std::move(p)) {}
  void normalize(std::string& s) const override {
    for (const auto& p : parts_) p->normalize(s);
  }

 private:
  std::vector<NormalizerPtr> parts_;
};

}  // namespace

NormalizerPtr make_unicode_normalizer(NormForm form) {
  return std::make_shared<UnicodeNormalizer>(form);
}
NormalizerPtr make_lowercase_normalizer() { return std::make_shared<LowercaseNormalizer>(); }
NormalizerPtr make_strip_normalizer(bool left, bool right) {
  return std::make_shared<StripNormalizer>(left, right);
}
NormalizerPtr make_strip_accents_normalizer() {
  return std::make_shared<StripAccentsNormalizer>();
}
NormalizerPtr make_prepend_normalizer(std::string prefix) {
  return std::make_shared<PrependNormalizer>(std::move(prefix));
}
NormalizerPtr make_replace_normalizer(std::string literal, std::optional<Regex> regex,
                                      std::string content) {
  return std::make_shared<ReplaceNormalizer>(std::move(literal), std::move(regex),
                                             std::move(content));
}
NormalizerPtr make_sequence_normalizer(std::vector<NormalizerPtr> parts) {
  return std::make_shared<SequenceNormalizer>(std::move(parts));
}

}  // namespace nibble::tok

#include "tokenizer/decoder.h"

#include "tokenizer/normalizer.h"
#include "tokenizer/unicode.h"

namespace nibble::tok {

namespace {

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      // A token with any character outside the byte-level alphabet (an added token such as
      // "<|eot_id|>" is inside it; "é" is not) goes through as its own UTF-8, as in HF.
      size_t mark = bytes.size();
      bool ok = true;
      size_t i = 0;
      while (i < t.size()) {
        int b = byte_level_decode(utf8_next(t, i));
        if (b < 0) {
          ok = false;
          break;
        }
        bytes.push_back(char(b));
      }
      if (!ok) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string rep, PrependScheme s) : rep_(std::move(rep)), scheme_(s) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k) {
      // HF drops every replacement character of the first token (not just a leading one)
      // when a prefix was prepended at encode time.
      bool drop = k == 0 && scheme_ != PrependScheme::kNever;
      std::string out;
      const std::string& t = tokens[k];
      for (size_t at = 0; at < t.size();) {
        if (!rep_.empty() && t.compare(at, rep_.size(), rep_) == 0) {
          if (!drop) out += ' ';
          at += rep_.size();
        } else {
          out += t[at++];
        }
      }
      tokens[k] = std::move(out);
    }
  }

 private:
  std::string rep_;
  PrependScheme scheme_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::string lit, std::optional<Regex> re, std::string content)
      : literal_(std::move(lit)), regex_(std::move(re)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = replace_all(t, literal_, regex_, content_);
  }

 private:
  std::string literal_;
  std::optional<Regex> regex_;
  std::string content_;
};

// "<0xHH>" -> the byte, or -1. Like Rust's u8::from_str_radix, "+H" is accepted too.
int parse_byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  int lo = hex(t[4]);
  if (lo < 0) return -1;
  if (t[3] == '+') return lo;
  int hi = hex(t[3]);
  return hi < 0 ? -1 : hi * 16 + lo;
}

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string run;
    auto flush = [&] {
      if (run.empty()) return;
      // HF: a run that is not valid UTF-8 becomes one U+FFFD per byte (not lossy repair).
      if (utf8_valid(run)) {
        out.push_back(run);
      } else {
        for (size_t k = 0; k < run.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      run.clear();
    };
    for (auto& t : tokens) {
      int b = parse_byte_token(t);
      if (b >= 0) {
        run.push_back(char(b));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string c, size_t start, size_t stop)
      : content_(std::move(c)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t k = 0; k < start_ && b < e && t.compare(b, content_.size(), content_) == 0; ++k)
        b += content_.size();
      for (size_t k = 0; k < stop_ && e >= b + content_.size() &&
                         t.compare(e - content_.size(), content_.size(), content_) == 0;
           ++k)
        e -= content_.size();
      t = t.substr(b, e - b);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class BpeSuffixDecoder final : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string s) : suffix_(std::move(s)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k)
      tokens[k] = replace_all(tokens[k], suffix_, std::nullopt, k + 1 == tokens.size() ? "" : " ");
  }

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<DecoderPtr> p) : parts_(std::move(p)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<DecoderPtr> parts_;
};

class TemplatePostProcessor final : public PostProcessor {
 public:
  explicit TemplatePostProcessor(std::vector<TemplateItem> s) : single_(std::move(s)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const auto& item : single_) {
      if (item.is_sequence) out.insert(out.end(), ids.begin(), ids.end());
      else out.insert(out.end(), item.ids.begin(), item.ids.end());
    }
    ids = std::move(out);
  }

 private:
  std::vector<TemplateItem> single_;
};

class NoopPostProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<PostProcessorPtr> p) : parts_(std::move(p)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& p : parts_) p->process(ids, add_special_tokens);
  }

 private:
  std::vector<PostProcessorPtr> parts_;
};

}  // namespace

DecoderPtr make_byte_level_decoder() { return std::make_shared<ByteLevelDecoder>(); }
DecoderPtr make_metaspace_decoder(std::string replacement, PrependScheme scheme) {
  return std::make_shared<MetaspaceDecoder>(std::move(replacement), scheme);
}
DecoderPtr make_replace_decoder(std::string literal, std::optional<Regex> regex,
                                std::string content) {
  return std::make_shared<ReplaceDecoder>(std::move(literal), std::move(regex),
                                          std::move(content));
}
DecoderPtr make_byte_fallback_decoder() { return std::make_shared<ByteFallbackDecoder>(); }
DecoderPtr make_fuse_decoder() { return std::make_shared<FuseDecoder>(); }
DecoderPtr make_strip_decoder(std::string content, size_t start, size_t stop) {
  return std::make_shared<StripDecoder>(std::move(content), start, stop);
}
DecoderPtr make_bpe_suffix_decoder(std::string suffix) {
  return std::make_shared<BpeSuffixDecoder>(std::move(suffix));
}
DecoderPtr make_sequence_decoder(std::vector<DecoderPtr> parts) {
  return std::make_shared<SequenceDecoder>(std::move(parts));
}

PostProcessorPtr make_template_post_processor(std::vector<TemplateItem> single) {
  return std::make_shared<TemplatePostProcessor>(std::move(single));
}
PostProcessorPtr make_noop_post_processor() { return std::make_shared<NoopPostProcessor>(); }
PostProcessorPtr make_wrap_post_processor(int32_t cls, int32_t sep) {
  return make_template_post_processor({{false, {cls}}, {true, {}}, {false, {sep}}});
}
PostProcessorPtr make_sequence_post_processor(std::vector<PostProcessorPtr> parts) {
  return std::make_shared<SequencePostProcessor>(std::move(parts));
}

}  // namespace nibble::tok

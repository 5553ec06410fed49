#include "tokenizer/tokenizer.h"

#include "tokenizer/unicode.h"

namespace nibble {

struct Tokenizer::Impl {
  Parts parts;
  tok::AddedVocab added;
  size_t vocab_size = 0;

  // Normalized text of one non-token piece -> ids (pre-tokenizer, then the model).
  void encode_words(std::string text, bool at_origin, std::vector<tok::Piece>& words,
                    std::vector<int32_t>& ids) const {
    words.clear();
    words.push_back(tok::Piece{std::move(text), at_origin});
    if (parts.pre_tokenizer) parts.pre_tokenizer->pre_tokenize(words);
    for (const tok::Piece& w : words) parts.model->tokenize(w.text, ids);
  }
};

Result<Tokenizer> Tokenizer::from_parts(Parts parts) {
  if (!parts.model) return Status::invalid("tokenizer: no model");
  auto impl = std::make_shared<Impl>();
  impl->added = tok::AddedVocab(parts.added_tokens, parts.normalizer.get());
  size_t n = parts.model->id_space();
  for (const auto& t : parts.added_tokens) {
    if (t.id < 0) return Status::invalid("tokenizer: added token '{}' has negative id", t.content);
    n = std::max(n, size_t(t.id) + 1);
  }
  impl->vocab_size = n;
  impl->parts = std::move(parts);
  Tokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens,
                                       bool parse_special) const {
  const Impl& im = *impl_;
  std::string repaired;
  if (!tok::utf8_valid(text)) {
    repaired = tok::utf8_lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<tok::Segment> raw, norm;
  std::vector<tok::Piece> words;
  im.added.split(text, /*normalized_set=*/false, parse_special, raw);
  for (const tok::Segment& seg : raw) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::string piece(text.substr(seg.b, seg.e - seg.b));
    if (im.parts.normalizer) im.parts.normalizer->normalize(piece);
    if (piece.empty()) continue;
    const bool origin = seg.b == 0;
    if (!im.added.has_normalized_set()) {
      im.encode_words(std::move(piece), origin, words, ids);
      continue;
    }
    norm.clear();
    im.added.split(piece, /*normalized_set=*/true, parse_special, norm);
    for (const tok::Segment& s : norm) {
      if (s.id >= 0) ids.push_back(s.id);
      else im.encode_words(piece.substr(s.b, s.e - s.b), origin && s.b == 0, words, ids);
    }
  }
  if (im.parts.post_processor) im.parts.post_processor->process(ids, add_special_tokens);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* s = im.added.text_of(id);
    if (s == nullptr) s = im.parts.model->id_to_token(id);
    if (s == nullptr) continue;
    if (skip_special_tokens && im.added.is_special_content(*s)) continue;
    tokens.push_back(*s);
  }
  if (!im.parts.decoder) {
    // HF joins with spaces when there is no decoder.
    std::string out;
    for (size_t k = 0; k < tokens.size(); ++k) {
      if (k) out += ' ';
      out += tokens[k];
    }
    return out;
  }
  im.parts.decoder->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const tok::AddedToken* t = impl_->added.by_content(token)) return t->id;
  return impl_->parts.model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  const std::string* s = impl_->added.text_of(id);
  if (s == nullptr) s = impl_->parts.model->id_to_token(id);
  return s ? *s : std::string();
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

bool Tokenizer::is_special(int32_t id) const {
  const tok::AddedToken* t = impl_->added.by_id(id);
  return t != nullptr && t->special;
}

const std::vector<tok::AddedToken>& Tokenizer::added_tokens() const {
  return impl_->added.tokens();
}

const Tokenizer::Parts& Tokenizer::parts() const { return impl_->parts; }

std::string DecodeStream::step(int32_t id) {
  ids_.push_back(id);
  std::span<const int32_t> all(ids_);
  std::string prefix = tok_.decode(all.subspan(prefix_start_, read_index_ - prefix_start_), skip_special_);
  std::string full = tok_.decode(all.subspan(prefix_start_), skip_special_);
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  bool incomplete = full.size() >= kReplacement.size() &&
                    std::string_view(full).substr(full.size() - kReplacement.size()) == kReplacement;
  if (full.size() <= prefix.size() || incomplete || full.compare(0, prefix.size(), prefix) != 0)
    return {};
  std::string out = full.substr(prefix.size());
  prefix_start_ = read_index_;
  read_index_ = ids_.size();
  // Drop ids no window will need again, so long generations stay O(1) per step.
  if (prefix_start_ > 64) {
    ids_.erase(ids_.begin(), ids_.begin() + long(prefix_start_));
    read_index_ -= prefix_start_;
    prefix_start_ = 0;
  }
  return out;
}

}  // namespace nibble

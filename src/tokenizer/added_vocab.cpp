#include "tokenizer/added_vocab.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace nibble::tok {

void AddedVocab::Trie::add(std::string_view s, int32_t token) {
  if (s.empty()) return;  // an empty pattern would match everywhere; HF cannot use it either
  if (nodes.empty()) nodes.emplace_back();
  first[uint8_t(s[0])] = true;
  int32_t cur = 0;
  for (char ch : s) {
    auto b = uint8_t(ch);
    auto& kids = nodes[size_t(cur)].kids;
    auto it = std::lower_bound(kids.begin(), kids.end(), b,
                               [](const auto& k, uint8_t v) { return k.first < v; });
    if (it != kids.end() && it->first == b) {
      cur = it->second;
    } else {
      auto next = int32_t(nodes.size());
      kids.insert(it, {b, next});
      nodes.emplace_back();
      cur = next;
    }
  }
  // Two tokens with the same content: the first one added keeps the pattern.
  if (nodes[size_t(cur)].token < 0) {
    nodes[size_t(cur)].token = token;
    ++n_tokens;
  }
}

int32_t AddedVocab::Trie::longest(std::string_view s, size_t i, size_t& end) const {
  int32_t best = -1;
  int32_t cur = 0;
  for (size_t j = i; j < s.size(); ++j) {
    const auto& kids = nodes[size_t(cur)].kids;
    auto b = uint8_t(s[j]);
    auto it = std::lower_bound(kids.begin(), kids.end(), b,
                               [](const auto& k, uint8_t v) { return k.first < v; });
    if (it == kids.end() || it->first != b) break;
    cur = it->second;
    if (nodes[size_t(cur)].token >= 0) {
      best = nodes[size_t(cur)].token;
      end = j + 1;
    }
  }
  return best;
}

AddedVocab::AddedVocab(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  // HF builds its patterns from the special tokens first, then the others.
  std::vector<size_t> order(tokens_.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_partition(order.begin(), order.end(), [&](size_t k) { return tokens_[k].special; });
  texts_.resize(tokens_.size());
  for (size_t k : order) {
    const AddedToken& t = tokens_[k];
    by_id_.emplace(t.id, k);
    by_content_.emplace(t.content, k);
    texts_[k] = t.content;
    if (t.normalized) {
      std::string c = t.content;
      if (normalizer != nullptr) normalizer->normalize(c);
      texts_[k] = c;
      norm_.add(c, int32_t(k));
    } else {
      raw_.add(t.content, int32_t(k));
    }
  }
}

const AddedToken* AddedVocab::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocab::by_content(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

const std::string* AddedVocab::text_of(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &texts_[it->second];
}

bool AddedVocab::is_special_content(std::string_view content) const {
  const AddedToken* t = by_content(content);
  return t != nullptr && t->special;
}

void AddedVocab::split(std::string_view text, bool normalized_set, bool parse_special,
                       std::vector<Segment>& out) const {
  const Trie& trie = normalized_set ? norm_ : raw_;
  const size_t n = text.size();
  size_t start_offset = 0;
  if (trie.n_tokens > 0) {
    size_t i = 0;
    while (i < n) {
      if (!trie.first[uint8_t(text[i])]) {
        ++i;
        continue;
      }
      size_t end = 0;
      int32_t k = trie.longest(text, i, end);
      if (k < 0) {
        ++i;
        continue;
      }
      const AddedToken& t = tokens_[size_t(k)];
      // Like HF's match iterator, a rejected match still consumes its text: scanning resumes
      // after it, not one byte later.
      size_t start = i, stop = end;
      i = end;
      if (!parse_special && t.special) continue;
      if (t.single_word) {
        bool space_before = start == 0 || !is_word_char(utf8_prev(text, start));
        size_t j = stop;
        bool space_after = stop == n || !is_word_char(utf8_next(text, j));
        if (!space_before || !space_after) continue;
      }
      if (t.lstrip) {
        size_t s = start;
        while (s > 0) {
          char32_t c = utf8_prev(text, s);
          if (!is_white_space(c)) break;
          do --s;
          while (s > 0 && (uint8_t(text[s]) & 0xC0) == 0x80);
        }
        start = std::max(s, start_offset);
      }
      if (t.rstrip) {
        while (stop < n) {
          size_t j = stop;
          if (!is_white_space(utf8_next(text, j))) break;
          stop = j;
        }
      }
      if (start_offset < start) out.push_back({start_offset, start, -1});
      out.push_back({start, stop, t.id});
      start_offset = stop;
    }
  }
  if (start_offset < n) out.push_back({start_offset, n, -1});
}

}  // namespace nibble::tok

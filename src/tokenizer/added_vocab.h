// Added tokens (special tokens like <|begin_of_text|>, and user-added ones) and how they are cut
// out of the text before normalization and pre-tokenization, following HF's AddedVocabulary:
// leftmost match first, the longest one at that position, then single_word / lstrip / rstrip.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/normalizer.h"

namespace nibble::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;      // skipped by decode(skip_special_tokens); parse_special=false ignores it
  bool lstrip = false;       // swallows White_Space on its left
  bool rstrip = false;       // swallows White_Space on its right
  bool single_word = false;  // only matches when not touching a \w character on either side
  bool normalized = true;    // matched after normalization (against normalized content)
};

// A stretch [b, e) of the text being split: an added token (id >= 0) or plain text (id -1).
struct Segment {
  size_t b, e;
  int32_t id;
};

class AddedVocab {
 public:
  AddedVocab() = default;
  // `normalizer` (may be null) is applied to the content of tokens with normalized=true.
  AddedVocab(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Cuts `text` on the raw-matched (normalized=false) or the normalized-matched tokens.
  // Segments cover the text in order (except what lstrip/rstrip swallow). With
  // parse_special=false, special tokens are left in the text (HF encode_special_tokens).
  void split(std::string_view text, bool normalized_set, bool parse_special,
             std::vector<Segment>& out) const;
  bool has_normalized_set() const { return !norm_.nodes.empty() && norm_.n_tokens > 0; }

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* by_id(int32_t id) const;
  const AddedToken* by_content(std::string_view content) const;
  // The text HF gives back for an added token id (decode, id_to_token): the content, or for
  // tokens with normalized=true the normalized content. nullptr when `id` is not added.
  const std::string* text_of(int32_t id) const;
  // True when `content` is the content of a special added token (HF is_special_token).
  bool is_special_content(std::string_view content) const;

 private:
  // Byte trie over token contents. nodes[0] is the root; kids are sorted by byte.
  struct Node {
    int32_t token = -1;  // index into tokens_ of the token ending here, or -1
    std::vector<std::pair<uint8_t, int32_t>> kids;
  };
  struct Trie {
    std::vector<Node> nodes;
    std::array<bool, 256> first{};  // bytes that can start a match
    size_t n_tokens = 0;
    void add(std::string_view s, int32_t token);
    // Longest token starting at s[i]: its index and end, or -1.
    int32_t longest(std::string_view s, size_t i, size_t& end) const;
  };

  std::vector<AddedToken> tokens_;
  std::vector<std::string> texts_;  // [tokens_.size()] see text_of
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Trie raw_, norm_;
};

}  // namespace nibble::tok

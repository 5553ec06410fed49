// The BPE model: word (UTF-8, already pre-tokenized) -> token ids, by repeatedly merging the
// adjacent pair with the lowest merge rank (leftmost first on ties), as HF's BPE does.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"

namespace nibble::tok {

struct BpeOptions {
  std::optional<std::string> unk_token;  // must be in the vocab when set
  std::string continuing_subword_prefix;  // "" = none (e.g. "##")
  std::string end_of_word_suffix;         // "" = none (e.g. "</w>")
  bool fuse_unk = false;       // consecutive unknown characters become one unk token
  bool byte_fallback = false;  // unknown characters become <0xHH> byte tokens when present
  bool ignore_merges = false;  // a word found whole in the vocab is one token, no merging
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
// token string -> id, looked up with string_view without a copy.
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// (left id, right id) -> (rank, merged id): open addressing, linear probing, power-of-two
// capacity kept at most half full. Keys pack the pair into 64 bits.
class MergeMap {
 public:
  struct Value {
    int32_t rank;
    int32_t id;
  };
  void reserve(size_t n);
  // A repeated key overwrites: HF collects merges into a hash map, so the last rank wins.
  void insert(int32_t a, int32_t b, Value v);
  const Value* find(int32_t a, int32_t b) const {
    uint64_t key = pack(a, b);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      const Entry& e = entries_[i];
      if (e.key == key) return &e.v;
      if (e.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  struct Entry {
    uint64_t key = kEmpty;
    Value v{};
  };
  static uint64_t pack(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  size_t slot(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  std::vector<Entry> entries_ = std::vector<Entry>(1);
  size_t mask_ = 0;
  int shift_ = 63;
  size_t size_ = 0;
};

class BpeModel {
 public:
  // vocab: (token, id) pairs, ids unique and >= 0; merges: (left, right) in rank order, both
  // sides and their concatenation (with continuing_subword_prefix removed from the right side)
  // in the vocab.
  static Result<std::shared_ptr<const BpeModel>> build(
      std::vector<std::pair<std::string, int32_t>> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options);

  // Appends the ids of `word` to `out`. Thread-safe.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr when not in the vocab
  size_t id_space() const { return id_to_token_.size(); }  // max id + 1
  const BpeOptions& options() const { return options_; }
  size_t n_merges() const { return merges_.size(); }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void apply_merges(std::vector<int32_t>& ids) const;

  TokenMap token_to_id_;
  std::vector<std::string> id_to_token_;  // [max id + 1]; "" for ids not in the vocab
  std::vector<bool> has_id_;              // [max id + 1]
  MergeMap merges_;
  BpeOptions options_;
  std::optional<int32_t> unk_id_;
  std::vector<int32_t> byte_ids_;         // [256] id of "<0xHH>", or -1
  // [0x800] id of the token made of code point c alone, or -1: the byte-level alphabet and
  // ASCII skip the hash lookup for initial symbols.
  std::vector<int32_t> small_cp_ids_;

  // Word -> ids cache, sharded to keep lock contention low under many threads.
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxCachedWordBytes = 256;
  static constexpr size_t kMaxEntriesPerShard = 1 << 14;
  struct CacheShard {
    std::shared_mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
  };
  std::unique_ptr<CacheShard[]> cache_ = std::make_unique<CacheShard[]>(kShards);
};

}  // namespace nibble::tok

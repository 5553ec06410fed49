#include "tokenizer/bpe.h"

#include <climits>
#include <mutex>
#include <queue>

#include "tokenizer/unicode.h"

namespace nibble::tok {

void MergeMap::reserve(size_t n) {
  size_t cap = 16;
  int bits = 4;
  while (cap < 2 * n) {
    cap <<= 1;
    ++bits;
  }
  entries_.assign(cap, Entry{});
  mask_ = cap - 1;
  shift_ = 64 - bits;
  size_ = 0;
}

void MergeMap::insert(int32_t a, int32_t b, Value v) {
  if (2 * (size_ + 1) > entries_.size()) {
    std::vector<Entry> old = std::move(entries_);
    reserve(old.size());
    for (const Entry& e : old)
      if (e.key != kEmpty) insert(int32_t(e.key >> 32), int32_t(uint32_t(e.key)), e.v);
  }
  uint64_t key = pack(a, b);
  for (size_t i = slot(key);; i = (i + 1) & mask_) {
    Entry& e = entries_[i];
    if (e.key == key) {
      e.v = v;
      return;
    }
    if (e.key == kEmpty) {
      e.key = key;
      e.v = v;
      ++size_;
      return;
    }
  }
}

Result<std::shared_ptr<const BpeModel>> BpeModel::build(
    std::vector<std::pair<std::string, int32_t>> vocab,
    const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options) {
  auto m = std::make_shared<BpeModel>();
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab) {
    if (id < 0) return Status::invalid("BPE vocab: token '{}' has negative id {}", tok, id);
    max_id = std::max(max_id, id);
  }
  m->id_to_token_.assign(size_t(max_id + 1), std::string());
  m->has_id_.assign(size_t(max_id + 1), false);
  m->token_to_id_.reserve(vocab.size());
  for (auto& [tok, id] : vocab) {
    if (m->has_id_[size_t(id)])
      return Status::invalid("BPE vocab: id {} is used by both '{}' and '{}'", id,
                             m->id_to_token_[size_t(id)], tok);
    m->has_id_[size_t(id)] = true;
    m->id_to_token_[size_t(id)] = tok;
    m->token_to_id_.emplace(std::move(tok), id);
  }

  const std::string& prefix = options.continuing_subword_prefix;
  m->merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = m->token_to_id(a), ib = m->token_to_id(b);
    if (!ia) return Status::invalid("BPE merge {} ('{} {}'): '{}' is not in the vocab", rank, a, b, a);
    if (!ib) return Status::invalid("BPE merge {} ('{} {}'): '{}' is not in the vocab", rank, a, b, b);
    joined = a;
    bool strip = !prefix.empty() && b.compare(0, prefix.size(), prefix) == 0;
    joined.append(b, strip ? prefix.size() : 0, std::string::npos);
    auto ij = m->token_to_id(joined);
    if (!ij)
      return Status::invalid("BPE merge {} ('{} {}'): '{}' is not in the vocab", rank, a, b, joined);
    m->merges_.insert(*ia, *ib, {int32_t(rank), *ij});
  }

  if (options.unk_token) m->unk_id_ = m->token_to_id(*options.unk_token);
  m->byte_ids_.assign(256, -1);
  if (options.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      auto id = m->token_to_id(fmt::format("<0x{:02X}>", b));
      if (id) m->byte_ids_[size_t(b)] = *id;
    }
  }
  m->small_cp_ids_.assign(0x800, -1);
  for (char32_t c = 0; c < 0x800; ++c) {
    std::string s;
    utf8_append(s, c);
    if (auto id = m->token_to_id(s)) m->small_cp_ids_[c] = *id;
  }
  m->options_ = std::move(options);
  return std::shared_ptr<const BpeModel>(std::move(m));
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || size_t(id) >= has_id_.size() || !has_id_[size_t(id)]) return nullptr;
  return &id_to_token_[size_t(id)];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  if (word.size() > kMaxCachedWordBytes) {
    merge_word(word, out);
    return;
  }
  size_t h = StringHash{}(word);
  CacheShard& shard = cache_[(h >> 7) % kShards];
  {
    std::shared_lock lock(shard.mu);
    auto it = shard.map.find(word);
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t start = out.size();
  merge_word(word, out);
  std::unique_lock lock(shard.mu);
  // A full shard stops caching rather than evicting: the hot words are cached early.
  if (shard.map.size() < kMaxEntriesPerShard)
    shard.map.emplace(std::string(word), std::vector<int32_t>(out.begin() + long(start), out.end()));
}

void BpeModel::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  const std::string& prefix = options_.continuing_subword_prefix;
  const std::string& suffix = options_.end_of_word_suffix;
  const bool plain = prefix.empty() && suffix.empty();
  std::vector<int32_t> ids;
  ids.reserve(w.size());
  // A run of unknown characters waiting to become one unk (fuse_unk) or several.
  bool unk_pending = false;
  std::string s;
  size_t i = 0;
  while (i < w.size()) {
    size_t b = i;
    char32_t c = utf8_next(w, i);
    int32_t id = -1;
    std::string_view sym = w.substr(b, i - b);
    if (plain) {
      if (c < 0x800) id = small_cp_ids_[c];
      else if (auto f = token_to_id(sym)) id = *f;
    } else {
      s.clear();
      if (b != 0) s += prefix;
      s += sym;
      if (i == w.size()) s += suffix;
      sym = s;
      if (auto f = token_to_id(sym)) id = *f;
    }
    if (id >= 0) {
      if (unk_pending) {
        ids.push_back(*unk_id_);
        unk_pending = false;
      }
      ids.push_back(id);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (char ch : sym) all = all && byte_ids_[uint8_t(ch)] >= 0;
      if (all) {
        // HF pushes the byte tokens without flushing a pending unk first; keep that order.
        for (char ch : sym) ids.push_back(byte_ids_[uint8_t(ch)]);
        continue;
      }
    }
    if (unk_id_) {
      if (unk_pending && !options_.fuse_unk) ids.push_back(*unk_id_);
      unk_pending = true;
    }
    // No unk token: HF drops the character.
  }
  if (unk_pending) ids.push_back(*unk_id_);
  apply_merges(ids);
  out.insert(out.end(), ids.begin(), ids.end());
}

void BpeModel::apply_merges(std::vector<int32_t>& ids) const {
  const size_t n = ids.size();
  if (n < 2) return;
  if (n <= 64) {
    // Short words: keep the rank of each adjacent pair and scan for the lowest; cheaper than a
    // heap at these sizes and gives the same order (lowest rank, then leftmost).
    int32_t ranks[64];
    int32_t merged[64];
    size_t len = n;
    for (size_t k = 0; k + 1 < len; ++k) {
      const MergeMap::Value* v = merges_.find(ids[k], ids[k + 1]);
      ranks[k] = v ? v->rank : INT_MAX;
      merged[k] = v ? v->id : -1;
    }
    while (len > 1) {
      size_t best = 0;
      for (size_t k = 1; k + 1 < len; ++k)
        if (ranks[k] < ranks[best]) best = k;
      if (ranks[best] == INT_MAX) break;
      ids[best] = merged[best];
      for (size_t k = best + 1; k + 1 < len; ++k) ids[k] = ids[k + 1];
      for (size_t k = best + 1; k + 2 < len; ++k) {
        ranks[k] = ranks[k + 1];
        merged[k] = merged[k + 1];
      }
      --len;
      auto refresh = [&](size_t k) {
        const MergeMap::Value* v = merges_.find(ids[k], ids[k + 1]);
        ranks[k] = v ? v->rank : INT_MAX;
        merged[k] = v ? v->id : -1;
      };
      if (best > 0) refresh(best - 1);
      if (best + 1 < len) refresh(best);
    }
    ids.resize(len);
    return;
  }

  // Long words: a doubly linked list of symbols and a min-heap of candidate merges. Stale heap
  // entries are skipped by checking that the pair still merges into the same id.
  struct Node {
    int32_t id, prev, next;
  };
  struct Cand {
    int32_t rank, pos, id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Node> nodes(n);
  for (size_t k = 0; k < n; ++k)
    nodes[k] = {ids[k], int32_t(k) - 1, k + 1 < n ? int32_t(k + 1) : -1};
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || nodes[size_t(pos)].next < 0) return;
    const MergeMap::Value* v =
        merges_.find(nodes[size_t(pos)].id, nodes[size_t(nodes[size_t(pos)].next)].id);
    if (v) heap.push({v->rank, pos, v->id});
  };
  for (size_t k = 0; k + 1 < n; ++k) push(int32_t(k));
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Node& left = nodes[size_t(c.pos)];
    if (left.id < 0 || left.next < 0) continue;
    Node& right = nodes[size_t(left.next)];
    const MergeMap::Value* v = merges_.find(left.id, right.id);
    if (!v || v->id != c.id) continue;
    left.id = c.id;
    right.id = -1;  // dead
    left.next = right.next;
    if (left.next >= 0) nodes[size_t(left.next)].prev = c.pos;
    push(left.prev);
    push(c.pos);
  }
  ids.clear();
  for (int32_t k = 0; k >= 0; k = nodes[size_t(k)].next) ids.push_back(nodes[size_t(k)].id);
}

}  // namespace nibble::tok

// ForwardBatch: T tokens from S sequences, each at its own position, in one forward call.
// See docs/engine.md.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kv/block_pool.h"

namespace nibble {

struct BatchSeq {
  int q_begin = 0;         // index of its first token in the batch
  int n_tokens = 0;        // tokens of this sequence in the batch
  const BlockTable* table = nullptr;  // reserved to hold every position written
  bool all_logits = false;  // logits for every token, or only the last
};

struct ForwardBatch {
  std::vector<int32_t> tokens;     // [T]
  std::vector<int32_t> positions;  // [T]
  std::vector<int32_t> slots;      // [T] cache slot: block * block_size + offset
  std::vector<BatchSeq> seqs;      // [S]

  // Appends `tokens` at positions [start, start + n) of the sequence whose blocks are
  // `table` (KvCache::reserve must already cover start + n).
  void add(std::span<const int32_t> toks, int start, const BlockTable& table, int block_size,
           bool all_logits);
  // Rows of logits forward() returns, in sequence order.
  int n_logit_rows() const;
  int n_tokens() const { return static_cast<int>(tokens.size()); }
};

}  // namespace nibble

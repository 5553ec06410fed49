#include "model/batch.h"

namespace nibble {

void ForwardBatch::add(std::span<const int32_t> toks, int start, const BlockTable& table,
                       int block_size, bool all_logits) {
  BatchSeq s;
  s.q_begin = n_tokens();
  s.n_tokens = static_cast<int>(toks.size());
  s.table = &table;
  s.all_logits = all_logits;
  for (int i = 0; i < s.n_tokens; ++i) {
    const int pos = start + i;
    tokens.push_back(toks[i]);
    positions.push_back(pos);
    slots.push_back(table.blocks[pos / block_size] * block_size + pos % block_size);
  }
  seqs.push_back(s);
}

int ForwardBatch::n_logit_rows() const {
  int n = 0;
  for (const auto& s : seqs) n += s.all_logits ? s.n_tokens : 1;
  return n;
}

}  // namespace nibble

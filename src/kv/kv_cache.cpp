#include "kv/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace nibble {

KvCache::KvCache(int n_layers, int n_blocks, ops::KvLayout layout)
    : layout_(layout), pool_(n_blocks), k_(n_layers), v_(n_layers) {
  const size_t per_layer =
      static_cast<size_t>(n_blocks) * layout.block_size * layout.n_kv_heads * layout.head_dim;
  for (int l = 0; l < n_layers; ++l) {
    k_[l].resize(per_layer);
    v_[l].resize(per_layer);
  }
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (size_t l = 0; l < k_.size(); ++l) b += (k_[l].size() + v_[l].size()) * sizeof(float);
  return b;
}

void KvCache::copy_block(int32_t from, int32_t to) {
  const size_t block = static_cast<size_t>(layout_.block_size) * layout_.n_kv_heads * layout_.head_dim;
  for (size_t l = 0; l < k_.size(); ++l) {
    std::memcpy(k_[l].data() + to * block, k_[l].data() + from * block, block * sizeof(float));
    std::memcpy(v_[l].data() + to * block, v_[l].data() + from * block, block * sizeof(float));
  }
}

Status KvCache::reserve(BlockTable& table, int new_len) {
  const int bs = layout_.block_size;
  const int need_blocks = (new_len + bs - 1) / bs;
  const int first_written = table.n_tokens / bs;  // first block the new positions touch
  int new_blocks = std::max(0, need_blocks - static_cast<int>(table.blocks.size()));
  int cow = 0;
  for (int b = first_written; b < static_cast<int>(table.blocks.size()) && b < need_blocks; ++b)
    if (pool_.refcount(table.blocks[b]) > 1) ++cow;
  if (new_blocks + cow > pool_.n_free())
    return Status::out_of_memory("KV cache full: {} blocks of {} tokens needed, {} free of {}",
                                 new_blocks + cow, bs, pool_.n_free(), pool_.n_blocks());
  for (int b = first_written; b < static_cast<int>(table.blocks.size()) && b < need_blocks; ++b) {
    int32_t old = table.blocks[b];
    if (pool_.refcount(old) > 1) {
      int32_t fresh = *pool_.allocate();
      copy_block(old, fresh);
      pool_.release(old);
      table.blocks[b] = fresh;
    }
  }
  for (int i = 0; i < new_blocks; ++i) table.blocks.push_back(*pool_.allocate());
  return Status::ok();
}

BlockTable KvCache::fork(const BlockTable& table) {
  for (int32_t b : table.blocks) pool_.retain(b);
  return table;
}

void KvCache::release(BlockTable& table) {
  for (int32_t b : table.blocks) pool_.release(b);
  table.blocks.clear();
  table.n_tokens = 0;
}

}  // namespace nibble

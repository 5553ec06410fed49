// The paged KV cache of one model: per layer k and v, each
// float [n_blocks, block_size, n_kv_heads, head_dim], plus the pool that hands out blocks.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "kv/block_pool.h"
#include "ops/ops.h"

namespace nibble {

class KvCache {
 public:
  KvCache(int n_layers, int n_blocks, ops::KvLayout layout);
  virtual ~KvCache() = default;

  // Makes `table` able to hold positions [0, new_len): allocates blocks, and copies any shared
  // block that positions [table.n_tokens, new_len) would write into (copy-on-write), so that
  // a forked sequence never overwrites its siblings' keys. On failure nothing is changed.
  Status reserve(BlockTable& table, int new_len);
  // A second table sharing every block of `table`.
  BlockTable fork(const BlockTable& table);
  void release(BlockTable& table);

  // Host storage (the CPU backend); null for a cache whose storage lives on a device.
  float* k(int layer) { return k_.empty() ? nullptr : k_[layer].data(); }
  float* v(int layer) { return v_.empty() ? nullptr : v_[layer].data(); }
  const ops::KvLayout& layout() const { return layout_; }
  BlockPool& pool() { return pool_; }
  int block_size() const { return layout_.block_size; }
  virtual size_t bytes() const;
  // Bytes of cache one token takes across all layers (K and V).
  static size_t bytes_per_token(int n_layers, const ops::KvLayout& l) {
    return static_cast<size_t>(n_layers) * 2 * l.n_kv_heads * l.head_dim * sizeof(float);
  }

 protected:
  // Block bookkeeping only: the subclass owns the storage (e.g. device memory) and copies blocks.
  struct NoHostStorage {};
  KvCache(NoHostStorage, int n_blocks, ops::KvLayout layout) : layout_(layout), pool_(n_blocks) {}
  // Copies every layer's K and V of block `from` into block `to` (copy-on-write).
  virtual void copy_block(int32_t from, int32_t to);

 private:

  ops::KvLayout layout_;
  BlockPool pool_;
  std::vector<std::vector<float>> k_, v_;  // [n_layers][n_blocks * block_size * n_kv * hd]
};

}  // namespace nibble

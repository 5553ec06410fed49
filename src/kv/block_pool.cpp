#include "kv/block_pool.h"

#include <cassert>

namespace nibble {

BlockPool::BlockPool(int n_blocks) : refs_(n_blocks, 0) {
  free_.reserve(n_blocks);
  for (int i = n_blocks - 1; i >= 0; --i) free_.push_back(i);
}

std::optional<int32_t> BlockPool::allocate() {
  if (free_.empty()) return std::nullopt;
  int32_t b = free_.back();
  free_.pop_back();
  refs_[b] = 1;
  return b;
}

void BlockPool::retain(int32_t block) {
  assert(refs_[block] > 0);
  ++refs_[block];
}

void BlockPool::release(int32_t block) {
  assert(refs_[block] > 0);
  if (--refs_[block] == 0) free_.push_back(block);
}

}  // namespace nibble

// Fixed-size KV blocks handed out by id with reference counts, so that sequences forked from
// one prompt (n > 1 samples, beams, search trees) share the prompt's blocks.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace nibble {

class BlockPool {
 public:
  explicit BlockPool(int n_blocks);

  std::optional<int32_t> allocate();  // refcount 1, or nullopt when none is free
  void retain(int32_t block);
  void release(int32_t block);        // back to the free list when the count reaches 0

  int refcount(int32_t block) const { return refs_[block]; }
  int n_free() const { return static_cast<int>(free_.size()); }
  int n_blocks() const { return static_cast<int>(refs_.size()); }

 private:
  std::vector<int32_t> refs_;  // [n_blocks]
  std::vector<int32_t> free_;  // stack of free ids; lowest ids handed out first
};

// A sequence's view of the cache: which block holds positions [i*B, (i+1)*B).
struct BlockTable {
  std::vector<int32_t> blocks;
  int n_tokens = 0;  // positions whose K/V are written
};

}  // namespace nibble

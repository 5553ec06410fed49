#include <gtest/gtest.h>

#include "kv/kv_cache.h"

namespace nibble {
namespace {

constexpr ops::KvLayout kLayout{4, 2, 8};  // blocks of 4 tokens, 2 kv heads, head dim 8

TEST(BlockPool, AllocatesUntilEmptyAndRecycles) {
  BlockPool pool(3);
  auto a = pool.allocate(), b = pool.allocate(), c = pool.allocate();
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(pool.allocate().has_value());
  pool.retain(*b);
  pool.release(*b);
  EXPECT_EQ(pool.n_free(), 0);
  pool.release(*b);
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_EQ(pool.allocate(), b);
}

TEST(KvCache, ReserveAllocatesWholeBlocks) {
  KvCache kv(1, 8, kLayout);
  BlockTable t;
  ASSERT_TRUE(kv.reserve(t, 1).is_ok());
  EXPECT_EQ(t.blocks.size(), 1u);
  ASSERT_TRUE(kv.reserve(t, 4).is_ok());
  EXPECT_EQ(t.blocks.size(), 1u);
  ASSERT_TRUE(kv.reserve(t, 9).is_ok());
  EXPECT_EQ(t.blocks.size(), 3u);
  EXPECT_EQ(kv.pool().n_free(), 5);
  kv.release(t);
  EXPECT_EQ(kv.pool().n_free(), 8);
}

TEST(KvCache, FullCacheIsAnErrorThatChangesNothing) {
  KvCache kv(1, 2, kLayout);
  BlockTable t;
  Status s = kv.reserve(t, 9);
  EXPECT_EQ(s.code(), StatusCode::kOutOfMemory);
  EXPECT_NE(s.message().find("3 blocks"), std::string::npos) << s.message();
  EXPECT_TRUE(t.blocks.empty());
  EXPECT_EQ(kv.pool().n_free(), 2);
}

// A fork shares the prompt's blocks; writing past the shared part copies the partial block
// first, so the parent's keys survive.
TEST(KvCache, ForkSharesAndCopiesOnWrite) {
  KvCache kv(2, 8, kLayout);
  const int row = kLayout.n_kv_heads * kLayout.head_dim;
  BlockTable parent;
  ASSERT_TRUE(kv.reserve(parent, 6).is_ok());  // blocks: full [0..3], partial [4..5]
  for (int pos = 0; pos < 6; ++pos) {
    const int slot = parent.blocks[pos / 4] * 4 + pos % 4;
    for (int l = 0; l < 2; ++l)
      for (int i = 0; i < row; ++i) kv.k(l)[slot * row + i] = 100.0f * l + pos;
  }
  parent.n_tokens = 6;
  BlockTable child = kv.fork(parent);
  EXPECT_EQ(child.blocks, parent.blocks);
  EXPECT_EQ(kv.pool().refcount(parent.blocks[0]), 2);

  ASSERT_TRUE(kv.reserve(child, 7).is_ok());
  EXPECT_EQ(child.blocks[0], parent.blocks[0]) << "the full block stays shared";
  EXPECT_NE(child.blocks[1], parent.blocks[1]) << "the partial block is copied";
  EXPECT_EQ(kv.pool().refcount(parent.blocks[1]), 1);
  for (int l = 0; l < 2; ++l)
    for (int pos = 4; pos < 6; ++pos) {
      const int slot = child.blocks[1] * 4 + pos % 4;
      EXPECT_EQ(kv.k(l)[slot * row], 100.0f * l + pos);
    }
  kv.release(child);
  kv.release(parent);
  EXPECT_EQ(kv.pool().n_free(), 8);
}

}  // namespace
}  // namespace nibble

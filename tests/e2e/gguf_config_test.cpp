// config_from_gguf on metadata llama.cpp reads but gguf files may lack or set unusually:
// Gemma 3's attention scale (no query_pre_attn_scalar in GGUF; derived as llama.cpp does),
// its local RoPE base, and partial rotary embeddings (refused).
#include <gtest/gtest.h>

#include <cmath>

#include "gguf_test_util.h"

namespace nibble {
namespace {

using test::GgufBuilder;

// Metadata for `arch` plus a token embedding (all config_from_gguf reads of the tensors).
std::vector<uint8_t> header(const std::string& arch, int layers, int hidden, int heads, int head_dim,
                            int rope_dims, float swa_base = 0) {
  GgufBuilder b;
  b.string("general.architecture", arch);
  b.u32(arch + ".block_count", layers);
  b.u32(arch + ".embedding_length", hidden);
  b.u32(arch + ".feed_forward_length", 2 * hidden);
  b.u32(arch + ".attention.head_count", heads);
  b.u32(arch + ".attention.head_count_kv", heads);
  b.u32(arch + ".attention.key_length", head_dim);
  if (rope_dims) b.u32(arch + ".rope.dimension_count", rope_dims);
  if (swa_base) b.f32(arch + ".rope.freq_base_swa", swa_base);
  b.tensor("token_embd.weight", GgmlType::F32, {hidden, 8}, std::vector<uint8_t>(hidden * 8 * 4));
  return b.build();
}

Result<ModelConfig> config(const std::vector<uint8_t>& bytes) {
  NB_ASSIGN_OR_RETURN(GgufFile f, GgufFile::from_memory(bytes.data(), bytes.size(), "mem.gguf"));
  return config_from_gguf(f);
}

TEST(GgufConfig, Gemma3AttentionScaleAsLlamaCpp) {
  // 27B shape (62 layers): 1/sqrt(hidden / heads), not 1/sqrt(head_dim).
  const auto big = header("gemma3", 62, 5376, 32, 128, 128);
  auto c = config(big);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_FLOAT_EQ(c->attn_scale, 1.0f / std::sqrt(168.0f));
  // Any other layer count: 1/sqrt(head_dim).
  const auto small = header("gemma3", 26, 1152, 4, 256, 256);
  c = config(small);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_FLOAT_EQ(c->attn_scale, 1.0f / 16.0f);
}

TEST(GgufConfig, Gemma3LocalRopeBase) {
  const auto with = header("gemma3", 6, 64, 2, 32, 32, 20000.0f);
  auto c = config(with);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->layers[0].rope.theta, 20000.0);  // layer 0 is a sliding (local) layer
  const auto without = header("gemma3", 6, 64, 2, 32, 32);
  c = config(without);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->layers[0].rope.theta, 10000.0);
}

TEST(GgufConfig, PartialRotaryIsRefused) {
  const auto partial = header("llama", 2, 64, 4, 16, 8);
  auto c = config(partial);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(c.status().message().find("rope.dimension_count"), std::string::npos) << c.status().message();
  const auto full = header("llama", 2, 64, 4, 16, 16);
  EXPECT_TRUE(config(full).is_ok());
}

}  // namespace
}  // namespace nibble

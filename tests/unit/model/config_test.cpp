// config.json in both forms found in the wild.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "io/model_config.h"
#include "model/model.h"

namespace nibble {
namespace {

using json = nlohmann::json;

json base() {
  return json{{"architectures", {"LlamaForCausalLM"}}, {"vocab_size", 100}, {"hidden_size", 64},
              {"intermediate_size", 128}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
              {"num_key_value_heads", 2}};
}

TEST(ModelConfig, ClassicRopeScalingWithRopeTypeOrType) {
  for (const char* key : {"rope_type", "type"}) {
    json j = base();
    j["rope_theta"] = 500000.0;
    j["rope_scaling"] = {{key, "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
    auto c = parse_model_config(j, "config.json");
    ASSERT_TRUE(c.is_ok()) << c.status().message();
    EXPECT_EQ(c->layers[0].rope.type, RopeType::kLlama3);
    EXPECT_EQ(c->layers[1].rope.theta, 500000.0);
    EXPECT_EQ(c->layers[0].rope.original_max_position, 8192);
  }
}

TEST(ModelConfig, TransformersFiveRopeParameters) {
  json j = base();
  j["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 1e6}};
  auto c = parse_model_config(j, "config.json");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->layers[0].rope.type, RopeType::kLinear);
  EXPECT_EQ(c->layers[0].rope.factor, 2.0);
  EXPECT_EQ(c->layers[0].rope.theta, 1e6);
}

TEST(ModelConfig, GemmaPerLayerTypeRope) {
  json j = base();
  j["architectures"] = {"Gemma3ForCausalLM"};
  j["head_dim"] = 32;
  j["sliding_window"] = 512;
  j["sliding_window_pattern"] = 2;  // classic: every 2nd layer is global
  j["rope_theta"] = 1e6;
  j["rope_local_base_freq"] = 1e4;
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};
  j["query_pre_attn_scalar"] = 256;
  auto c = parse_model_config(j, "config.json");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_TRUE(c->layers[0].sliding);
  EXPECT_FALSE(c->layers[1].sliding);
  EXPECT_EQ(c->layers[0].rope.theta, 1e4);
  EXPECT_EQ(c->layers[0].rope.type, RopeType::kDefault);
  EXPECT_EQ(c->layers[1].rope.type, RopeType::kLinear);
  EXPECT_FLOAT_EQ(c->attn_scale, 1.0f / 16.0f);
  EXPECT_FLOAT_EQ(c->embed_scale, 8.0f);
  EXPECT_TRUE(c->norm_adds_one);
  EXPECT_TRUE(c->tie_word_embeddings);
}

TEST(ModelConfig, DefaultsAndEos) {
  json j = base();
  j["eos_token_id"] = {7, 9};
  auto c = parse_model_config(j, "config.json");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int>{7, 9}));
  EXPECT_FALSE(c->attention_bias);
  j["architectures"] = {"Qwen2ForCausalLM"};
  EXPECT_TRUE(parse_model_config(j, "c")->attention_bias);
}

TEST(ModelConfig, GqaMustDivide) {
  json j = base();
  j["num_key_value_heads"] = 3;
  auto c = parse_model_config(j, "config.json");
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("num_key_value_heads"), std::string::npos);
}

// Llama 3.1 frequencies: short wavelengths kept, long ones divided by the factor, a blend between.
TEST(Rope, Llama3FrequencyBands) {
  RopeConfig r;
  r.type = RopeType::kLlama3;
  r.theta = 500000;
  r.factor = 8;
  r.original_max_position = 8192;
  const int d = 128;
  auto f = rope_inv_freq(r, d);
  RopeConfig plain = r;
  plain.type = RopeType::kDefault;
  auto p = rope_inv_freq(plain, d);
  EXPECT_EQ(f[0], p[0]);  // wavelength 2*pi: high frequency, untouched
  EXPECT_FLOAT_EQ(f[63], p[63] / 8);  // longest wavelength: divided
  int blended = 0;
  for (int i = 0; i < 64; ++i)
    if (f[i] < p[i] && f[i] > p[i] / 8 * 1.0001f) ++blended;
  EXPECT_GT(blended, 0);
}

}  // namespace
}  // namespace nibble

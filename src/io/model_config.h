// config.json (+ generation_config.json) -> a typed ModelConfig. Everything the forward pass
// needs is decided here, from the model's own files; the model code reads only this struct.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"

namespace nibble {

// Weight naming and block structure. Picked from config.json "architectures".
enum class ArchFamily { kLlama, kGemma3 };  // kLlama covers Llama, Mistral, Qwen2, Qwen3

enum class RopeType { kDefault, kLinear, kLlama3 };

struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;            // linear and llama3
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  double original_max_position = 8192;  // llama3
  // Per-frequency divisors (GGUF's rope_freqs.weight, how llama.cpp stores Llama 3.1 scaling):
  // empty, or [head_dim / 2] applied on top of `type`.
  std::vector<float> freq_factors;
};

enum class Activation { kSilu, kGeluTanh };

struct LayerConfig {
  bool sliding = false;  // attends to the last `sliding_window` positions only
  RopeConfig rope;
};

struct ModelConfig {
  std::string architecture;  // e.g. "Qwen3ForCausalLM"
  std::string model_type;    // e.g. "qwen3"
  ArchFamily family = ArchFamily::kLlama;

  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int max_position_embeddings = 0;
  float norm_eps = 1e-5f;
  bool tie_word_embeddings = false;

  bool attention_bias = false;  // q/k/v biases (Qwen2)
  bool qk_norm = false;         // RMSNorm on each head of q and k before RoPE (Qwen3, Gemma 3)
  bool norm_adds_one = false;   // RMSNorm multiplies by (1 + w) (Gemma)
  bool sandwich_norms = false;  // norms after attention and MLP too: four per block (Gemma 3)
  float embed_scale = 1.0f;     // embeddings multiplied by this (Gemma: sqrt(hidden))
  float attn_scale = 0.0f;      // softmax scale; 1/sqrt(head_dim) unless the config says
  float attn_softcap = 0.0f;    // 0 = none; else scores = cap * tanh(scores / cap)
  float final_softcap = 0.0f;   // same on the logits
  Activation activation = Activation::kSilu;
  int sliding_window = 0;       // 0 = no sliding layers
  std::vector<LayerConfig> layers;  // [n_layers]

  std::string quantization_config;  // config.json's quantization_config as JSON text; "" if none
  std::string dtype = "bfloat16";   // config "torch_dtype"/"dtype": informational
  int bos_token_id = -1;
  std::vector<int> eos_token_ids;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
};

// Parses the JSON text of config.json; `where` names the file in errors.
Result<ModelConfig> parse_model_config(const nlohmann::json& j, const std::string& where);
// Reads DIR/config.json and, if present, DIR/generation_config.json (its eos ids win).
Result<ModelConfig> load_model_config(const std::string& dir);
Result<ModelConfig> load_model_config_file(const std::string& config_json_path);

std::string_view rope_type_name(RopeType t);

}  // namespace nibble

#include "io/model_config.h"

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"

namespace nibble {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Typed lookups whose errors name the file and the key.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  Result<int> req_int(const char* key) const {
    if (!has(key)) return Status::invalid("{}: missing key '{}'", where_, key);
    return as_int(j_[key], key);
  }
  Result<int> opt_int(const char* key, int def) const {
    return has(key) ? as_int(j_[key], key) : Result<int>(def);
  }
  Result<double> opt_num(const char* key, double def) const {
    if (!has(key)) return def;
    if (!j_[key].is_number()) return Status::invalid("{}: key '{}' must be a number", where_, key);
    return j_[key].get<double>();
  }
  Result<bool> opt_bool(const char* key, bool def) const {
    if (!has(key)) return def;
    if (!j_[key].is_boolean()) return Status::invalid("{}: key '{}' must be true or false", where_, key);
    return j_[key].get<bool>();
  }
  std::string opt_str(const char* key, const std::string& def) const {
    return has(key) && j_[key].is_string() ? j_[key].get<std::string>() : def;
  }
  const std::string& where() const { return where_; }

 private:
  Result<int> as_int(const json& v, const char* key) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 30))
      return Status::invalid("{}: key '{}' must be a non-negative integer", where_, key);
    return static_cast<int>(v.get<int64_t>());
  }
  const json& j_;
  std::string where_;
};

// One rope dict: {rope_type|type, rope_theta?, factor, ...}. `theta` is the default base.
Result<RopeConfig> parse_rope(const json& r, double theta, const std::string& where,
                              const std::string& key) {
  RopeConfig rope;
  rope.theta = theta;
  if (r.is_null()) return rope;
  if (!r.is_object()) return Status::invalid("{}: '{}' must be an object", where, key);
  std::string type = "default";
  if (r.contains("rope_type") && r["rope_type"].is_string()) type = r["rope_type"];
  else if (r.contains("type") && r["type"].is_string()) type = r["type"];
  auto num = [&](const char* k, double def) -> Result<double> {
    if (!r.contains(k) || r[k].is_null()) return def;
    if (!r[k].is_number()) return Status::invalid("{}: '{}.{}' must be a number", where, key, k);
    return r[k].get<double>();
  };
  NB_ASSIGN_OR_RETURN(rope.theta, num("rope_theta", theta));
  if (type == "default") {
    rope.type = RopeType::kDefault;
  } else if (type == "linear") {
    rope.type = RopeType::kLinear;
    NB_ASSIGN_OR_RETURN(rope.factor, num("factor", 1.0));
  } else if (type == "llama3") {
    rope.type = RopeType::kLlama3;
    NB_ASSIGN_OR_RETURN(rope.factor, num("factor", 8.0));
    NB_ASSIGN_OR_RETURN(rope.low_freq_factor, num("low_freq_factor", 1.0));
    NB_ASSIGN_OR_RETURN(rope.high_freq_factor, num("high_freq_factor", 4.0));
    NB_ASSIGN_OR_RETURN(rope.original_max_position, num("original_max_position_embeddings", 8192));
    if (rope.high_freq_factor <= rope.low_freq_factor)
      return Status::invalid("{}: '{}': high_freq_factor must exceed low_freq_factor", where, key);
  } else {
    return Status::unsupported("{}: '{}': rope type '{}' is not supported (default, linear, llama3)",
                               where, key, type);
  }
  if (!(rope.theta > 0) || !(rope.factor > 0))
    return Status::invalid("{}: '{}': rope_theta and factor must be positive", where, key);
  return rope;
}

Status parse_eos(const json& v, std::vector<int>& out, const std::string& where) {
  if (v.is_null()) return Status::ok();
  out.clear();
  if (v.is_number_integer()) {
    out.push_back(v.get<int>());
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_number_integer()) return Status::invalid("{}: 'eos_token_id' entries must be integers", where);
      out.push_back(e.get<int>());
    }
  } else {
    return Status::invalid("{}: 'eos_token_id' must be an integer or a list", where);
  }
  return Status::ok();
}

}  // namespace

std::string_view rope_type_name(RopeType t) {
  switch (t) {
    case RopeType::kDefault: return "default";
    case RopeType::kLinear: return "linear";
    case RopeType::kLlama3: return "llama3";
  }
  return "?";
}

Result<ModelConfig> parse_model_config(const json& j, const std::string& where) {
  if (!j.is_object()) return Status::invalid("{}: not a JSON object", where);
  Reader r(j, where);
  ModelConfig c;
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
      !j["architectures"][0].is_string())
    return Status::invalid("{}: missing key 'architectures'", where);
  c.architecture = j["architectures"][0].get<std::string>();
  c.model_type = r.opt_str("model_type", "");

  const std::string& a = c.architecture;
  if (a == "LlamaForCausalLM" || a == "MistralForCausalLM" || a == "Qwen2ForCausalLM" ||
      a == "Qwen3ForCausalLM") {
    c.family = ArchFamily::kLlama;
  } else if (a == "Gemma3ForCausalLM") {
    c.family = ArchFamily::kGemma3;
  } else {
    return Status::unsupported(
        "{}: architecture '{}' is not supported (LlamaForCausalLM, MistralForCausalLM, "
        "Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma3ForCausalLM)",
        where, a);
  }

  NB_ASSIGN_OR_RETURN(c.vocab_size, r.req_int("vocab_size"));
  NB_ASSIGN_OR_RETURN(c.hidden_size, r.req_int("hidden_size"));
  NB_ASSIGN_OR_RETURN(c.intermediate_size, r.req_int("intermediate_size"));
  NB_ASSIGN_OR_RETURN(c.n_layers, r.req_int("num_hidden_layers"));
  NB_ASSIGN_OR_RETURN(c.n_heads, r.req_int("num_attention_heads"));
  NB_ASSIGN_OR_RETURN(c.n_kv_heads, r.opt_int("num_key_value_heads", c.n_heads));
  if (c.vocab_size == 0 || c.hidden_size == 0 || c.intermediate_size == 0 || c.n_layers == 0 ||
      c.n_heads == 0 || c.n_kv_heads == 0)
    return Status::invalid("{}: sizes must be positive", where);
  if (c.n_heads % c.n_kv_heads != 0)
    return Status::invalid("{}: num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
                           where, c.n_heads, c.n_kv_heads);
  int default_head_dim = c.hidden_size / c.n_heads;
  NB_ASSIGN_OR_RETURN(c.head_dim, r.opt_int("head_dim", default_head_dim));
  if (c.head_dim == 0 || c.head_dim % 2 != 0)
    return Status::invalid("{}: head_dim must be positive and even, got {}", where, c.head_dim);
  NB_ASSIGN_OR_RETURN(c.max_position_embeddings, r.opt_int("max_position_embeddings", 4096));
  double eps;
  NB_ASSIGN_OR_RETURN(eps, r.opt_num("rms_norm_eps", 1e-6));
  c.norm_eps = static_cast<float>(eps);
  bool tie_default = c.family == ArchFamily::kGemma3;
  NB_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.opt_bool("tie_word_embeddings", tie_default));
  c.dtype = r.opt_str("torch_dtype", r.opt_str("dtype", "bfloat16"));
  NB_ASSIGN_OR_RETURN(c.bos_token_id, r.opt_int("bos_token_id", -1));
  if (j.contains("quantization_config") && j["quantization_config"].is_object())
    c.quantization_config = j["quantization_config"].dump();
  if (j.contains("eos_token_id")) NB_TRY(parse_eos(j["eos_token_id"], c.eos_token_ids, where));

  // Attention variants. Qwen2 always has q/k/v biases; others say so with attention_bias.
  bool bias_default = a == "Qwen2ForCausalLM";
  NB_ASSIGN_OR_RETURN(c.attention_bias, r.opt_bool("attention_bias", bias_default));
  c.qk_norm = a == "Qwen3ForCausalLM" || c.family == ArchFamily::kGemma3;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  std::string act = r.opt_str("hidden_act", r.opt_str("hidden_activation", "silu"));
  if (act == "silu" || act == "swish") c.activation = Activation::kSilu;
  else if (act == "gelu_pytorch_tanh" || act == "gelu_tanh") c.activation = Activation::kGeluTanh;
  else return Status::unsupported("{}: activation '{}' is not supported (silu, gelu_pytorch_tanh)", where, act);

  // Sliding windows: Mistral and Qwen2 apply one window to every layer when set (Qwen2 only
  // with use_sliding_window); Gemma 3 and transformers 5 configs name each layer's kind.
  int window = 0;
  if (j.contains("sliding_window") && !j["sliding_window"].is_null()) {
    NB_ASSIGN_OR_RETURN(window, r.req_int("sliding_window"));
  }
  bool use_sliding = true;
  NB_ASSIGN_OR_RETURN(use_sliding, r.opt_bool("use_sliding_window", a != "Qwen2ForCausalLM" && a != "Qwen3ForCausalLM"));
  std::vector<bool> sliding(c.n_layers, false);
  if (j.contains("layer_types") && j["layer_types"].is_array()) {
    if (j["layer_types"].size() != static_cast<size_t>(c.n_layers))
      return Status::invalid("{}: 'layer_types' has {} entries for {} layers", where,
                             j["layer_types"].size(), c.n_layers);
    for (int i = 0; i < c.n_layers; ++i) {
      const auto& t = j["layer_types"][i];
      if (!t.is_string()) return Status::invalid("{}: 'layer_types' entries must be strings", where);
      if (t == "sliding_attention") sliding[i] = true;
      else if (t != "full_attention")
        return Status::unsupported("{}: layer type '{}' is not supported", where, t.get<std::string>());
    }
  } else if (c.family == ArchFamily::kGemma3) {
    int pattern;
    NB_ASSIGN_OR_RETURN(pattern, r.opt_int("sliding_window_pattern", 6));
    for (int i = 0; i < c.n_layers; ++i) sliding[i] = pattern == 0 || (i + 1) % pattern != 0;
  } else {
    for (int i = 0; i < c.n_layers; ++i) sliding[i] = window > 0 && use_sliding;
  }
  if (!use_sliding && c.family == ArchFamily::kLlama) sliding.assign(c.n_layers, false);
  c.sliding_window = window;
  for (int i = 0; i < c.n_layers; ++i)
    if (sliding[i] && window == 0)
      return Status::invalid("{}: layer {} is a sliding-attention layer but 'sliding_window' is not set", where, i);

  // RoPE: transformers 5 writes rope_parameters (one dict, or one per layer type); the Hub's
  // classic form has rope_theta + rope_scaling (+ rope_local_base_freq for Gemma 3).
  double theta;
  NB_ASSIGN_OR_RETURN(theta, r.opt_num("rope_theta", 10000.0));
  RopeConfig global, local;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    const json& rp = j["rope_parameters"];
    if (rp.contains("full_attention") || rp.contains("sliding_attention")) {
      if (rp.contains("full_attention")) {
        NB_ASSIGN_OR_RETURN(global, parse_rope(rp["full_attention"], theta, where, "rope_parameters.full_attention"));
      }
      local = global;
      if (rp.contains("sliding_attention")) {
        NB_ASSIGN_OR_RETURN(local, parse_rope(rp["sliding_attention"], theta, where, "rope_parameters.sliding_attention"));
      }
    } else {
      NB_ASSIGN_OR_RETURN(global, parse_rope(rp, theta, where, "rope_parameters"));
      local = global;
    }
  } else {
    NB_ASSIGN_OR_RETURN(global, parse_rope(j.value("rope_scaling", json()), theta, where, "rope_scaling"));
    local = global;
    if (c.family == ArchFamily::kGemma3) {
      // Gemma 3's local layers use their own base and no scaling.
      local = RopeConfig{};
      NB_ASSIGN_OR_RETURN(local.theta, r.opt_num("rope_local_base_freq", 10000.0));
    }
  }
  c.layers.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    c.layers[i].sliding = sliding[i];
    c.layers[i].rope = sliding[i] ? local : global;
  }

  if (c.family == ArchFamily::kGemma3) {
    c.norm_adds_one = true;
    c.sandwich_norms = true;
    c.embed_scale = std::sqrt(static_cast<float>(c.hidden_size));
    int qpas;
    NB_ASSIGN_OR_RETURN(qpas, r.opt_int("query_pre_attn_scalar", c.head_dim));
    if (qpas == 0) return Status::invalid("{}: query_pre_attn_scalar must be positive", where);
    c.attn_scale = 1.0f / std::sqrt(static_cast<float>(qpas));
    // attn_logit_softcapping is read by Gemma 2 only: transformers' Gemma3Attention keeps the
    // value but never applies it (real Gemma 3 configs set it null), so neither do we.
    double cap;
    NB_ASSIGN_OR_RETURN(cap, r.opt_num("final_logit_softcapping", 0.0));
    c.final_softcap = static_cast<float>(cap);
  }
  return c;
}

Result<ModelConfig> load_model_config_file(const std::string& path) {
  NB_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::invalid("{}: not valid JSON", path);
  return parse_model_config(j, path);
}

Result<ModelConfig> load_model_config(const std::string& dir) {
  if (!fs::is_directory(dir)) return Status::not_found("{}: no such model folder", dir);
  NB_ASSIGN_OR_RETURN(ModelConfig c, load_model_config_file((fs::path(dir) / "config.json").string()));
  const std::string gen = (fs::path(dir) / "generation_config.json").string();
  if (fs::exists(gen)) {
    NB_ASSIGN_OR_RETURN(std::string text, read_text_file(gen));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::invalid("{}: not a JSON object", gen);
    if (j.contains("eos_token_id")) NB_TRY(parse_eos(j["eos_token_id"], c.eos_token_ids, gen));
    if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_token_id = j["bos_token_id"];
  }
  return c;
}

}  // namespace nibble

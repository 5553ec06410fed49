#include "model/gguf_loader.h"

#include <cmath>
#include <regex>

#include "quant/ggml_matrix.h"

namespace nibble {

namespace {

// llama.cpp's converter stores each head's rows as (i, half) pairs interleaved: GGUF row
// h*hd + 2i + j holds HF row h*hd + j*hd/2 + i.
std::vector<int32_t> unpermute_rows(int n_heads, int head_dim) {
  std::vector<int32_t> map(static_cast<size_t>(n_heads) * head_dim);
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h)
    for (int j = 0; j < 2; ++j)
      for (int i = 0; i < half; ++i) map[h * head_dim + j * half + i] = h * head_dim + 2 * i + j;
  return map;
}

}  // namespace

class GgufQuantLoader : public QuantLoader {
 public:
  explicit GgufQuantLoader(const GgufSource& src) : src_(src) {}
  Result<std::unique_ptr<QuantWeight>> load(const TensorSource&, const std::string& name, int64_t rows,
                                            int64_t cols) const override {
    const std::string g = src_.gguf_name(name);
    const GgufTensor* t = g.empty() ? nullptr : src_.file_.find_tensor(g);
    if (!t) return Status::not_found("{}: no tensor '{}' (for {})", src_.file_.name(), g.empty() ? name : g, name);
    if (t->shape.size() != 2 || t->rows != rows || t->cols != cols)
      return Status::invalid("{}: tensor '{}' is {}, expected [{}, {}]", src_.file_.name(), g, t->shape_str(), rows, cols);
    if (!ggml_type_info(t->type).has_dequant)
      return Status::unsupported("{}: tensor '{}' has type {}, which nibble cannot decode", src_.file_.name(), g,
                                 ggml_type_name(t->type));
    std::vector<int32_t> map;
    if (src_.permuted_qk_) {
      if (g.ends_with("attn_q.weight")) map = unpermute_rows(src_.n_heads_, src_.head_dim_);
      else if (g.ends_with("attn_k.weight")) map = unpermute_rows(src_.n_kv_heads_, src_.head_dim_);
    }
    return std::unique_ptr<QuantWeight>(new GgmlMatrix(*t, std::move(map)));
  }

 private:
  const GgufSource& src_;
};

GgufSource::GgufSource(GgufFile file, const ModelConfig& c)
    : file_(std::move(file)), n_heads_(c.n_heads), n_kv_heads_(c.n_kv_heads), head_dim_(c.head_dim) {
  auto arch = file_.get_string("general.architecture");
  if (arch.is_ok()) arch_ = std::string(arch.value());
  permuted_qk_ = arch_ == "llama";
}

std::unique_ptr<QuantLoader> GgufSource::quant_loader() const { return std::make_unique<GgufQuantLoader>(*this); }

std::string GgufSource::gguf_name(const std::string& hf) const {
  static const std::vector<std::pair<std::string, std::string>> kTop = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  for (const auto& [h, g] : kTop)
    if (hf == h) return g;
  // Gemma 3's sandwich norms have their own GGUF names; the Llama family's
  // post_attention_layernorm is the pre-MLP norm (ffn_norm).
  const bool gemma = arch_ == "gemma3";
  static const std::vector<std::pair<std::string, std::string>> kLayer = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
      {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
      {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
  };
  static const std::regex kLayerName(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch m;
  if (!std::regex_match(hf, m, kLayerName)) return "";
  const std::string prefix = "blk." + m[1].str() + ".";
  const std::string rest = m[2].str();
  if (rest == "post_attention_layernorm.weight")
    return prefix + (gemma ? "post_attention_norm.weight" : "ffn_norm.weight");
  for (const auto& [h, g] : kLayer)
    if (rest == h) return prefix + g;
  return "";
}

bool GgufSource::has(const std::string& name) const {
  const std::string g = gguf_name(name);
  return !g.empty() && file_.find_tensor(g) != nullptr;
}

Result<TensorRef> GgufSource::get(const std::string& name) const {
  const std::string g = gguf_name(name);
  const GgufTensor* t = g.empty() ? nullptr : file_.find_tensor(g);
  if (!t) return Status::not_found("{}: no tensor '{}' (for {})", file_.name(), g.empty() ? name : g, name);
  TensorRef r;
  r.name = name;
  r.file = file_.name();
  r.shape = t->shape;
  r.data = t->data;
  r.nbytes = t->nbytes;
  switch (t->type) {
    case GgmlType::F32: r.dtype = DType::kF32; break;
    case GgmlType::F16: r.dtype = DType::kF16; break;
    case GgmlType::BF16: r.dtype = DType::kBF16; break;
    default:
      return Status::unsupported("{}: tensor '{}' ({}) is quantized where nibble expects a plain vector",
                                 file_.name(), g, t->shape_str());
  }
  return r;
}

std::vector<std::string> GgufSource::names() const {
  std::vector<std::string> out;
  for (const auto& t : file_.tensors()) out.push_back(t.name);
  return out;
}

Result<ModelConfig> config_from_gguf(const GgufFile& f) {
  ModelConfig c;
  NB_ASSIGN_OR_RETURN(std::string_view arch_view, f.get_string("general.architecture"));
  const std::string arch(arch_view);
  const std::string where = f.name();
  auto key = [&](const char* k) { return arch + "." + k; };
  auto req_int = [&](const char* k) -> Result<int> {
    NB_ASSIGN_OR_RETURN(int64_t v, f.get_int(key(k)));
    if (v <= 0 || v > (1 << 30)) return Status::invalid("{}: '{}' = {} is out of range", where, key(k), v);
    return static_cast<int>(v);
  };
  auto opt_int = [&](const char* k, int def) -> Result<int> { return f.has(key(k)) ? req_int(k) : Result<int>(def); };
  auto opt_float = [&](const char* k, double def) -> Result<double> {
    return f.has(key(k)) ? f.get_float(key(k)) : Result<double>(def);
  };

  if (arch == "llama") {
    c.architecture = "LlamaForCausalLM";
  } else if (arch == "qwen2") {
    c.architecture = "Qwen2ForCausalLM";
    c.attention_bias = true;
  } else if (arch == "qwen3") {
    c.architecture = "Qwen3ForCausalLM";
    c.qk_norm = true;
  } else if (arch == "gemma3") {
    c.architecture = "Gemma3ForCausalLM";
    c.family = ArchFamily::kGemma3;
  } else {
    return Status::unsupported("{}: general.architecture '{}' is not supported (llama, qwen2, qwen3, gemma3)", where, arch);
  }
  c.model_type = arch;
  NB_ASSIGN_OR_RETURN(c.hidden_size, req_int("embedding_length"));
  NB_ASSIGN_OR_RETURN(c.intermediate_size, req_int("feed_forward_length"));
  NB_ASSIGN_OR_RETURN(c.n_layers, req_int("block_count"));
  NB_ASSIGN_OR_RETURN(c.n_heads, req_int("attention.head_count"));
  NB_ASSIGN_OR_RETURN(c.n_kv_heads, opt_int("attention.head_count_kv", c.n_heads));
  NB_ASSIGN_OR_RETURN(c.head_dim, opt_int("attention.key_length", c.hidden_size / c.n_heads));
  NB_ASSIGN_OR_RETURN(c.max_position_embeddings, opt_int("context_length", 4096));
  if (c.n_heads % c.n_kv_heads != 0 || c.head_dim % 2 != 0)
    return Status::invalid("{}: inconsistent attention shape ({} heads, {} KV heads, head dim {})", where, c.n_heads,
                           c.n_kv_heads, c.head_dim);
  double eps;
  NB_ASSIGN_OR_RETURN(eps, opt_float("attention.layer_norm_rms_epsilon", 1e-5));
  c.norm_eps = static_cast<float>(eps);

  const GgufTensor* embd = f.find_tensor("token_embd.weight");
  if (!embd) return Status::not_found("{}: no tensor 'token_embd.weight'", where);
  c.vocab_size = static_cast<int>(embd->rows);
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  // Partial rotary embeddings (RoPE on the first n_rot dims of each head only) are not
  // implemented: refuse rather than rotate every dimension.
  if (f.has(key("rope.dimension_count"))) {
    NB_ASSIGN_OR_RETURN(int n_rot, req_int("rope.dimension_count"));
    if (n_rot != c.head_dim)
      return Status::unsupported("{}: '{}' = {} differs from the head dimension {} (partial rotary embeddings are "
                                 "not supported)", where, key("rope.dimension_count"), n_rot, c.head_dim);
  }
  RopeConfig rope;
  NB_ASSIGN_OR_RETURN(rope.theta, opt_float("rope.freq_base", 10000.0));
  if (f.has(key("rope.scaling.type"))) {
    NB_ASSIGN_OR_RETURN(std::string_view type, f.get_string(key("rope.scaling.type")));
    if (type == "linear") {
      rope.type = RopeType::kLinear;
      NB_ASSIGN_OR_RETURN(rope.factor, opt_float("rope.scaling.factor", 1.0));
    } else if (type != "none") {
      return Status::unsupported("{}: rope scaling '{}' is not supported", where, std::string(type));
    }
  }
  if (const GgufTensor* ff = f.find_tensor("rope_freqs.weight")) {
    if (ff->type != GgmlType::F32 || ff->n_elements != c.head_dim / 2)
      return Status::invalid("{}: rope_freqs.weight must be {} F32 values, is {}", where, c.head_dim / 2, ff->shape_str());
    rope.freq_factors.resize(c.head_dim / 2);
    std::memcpy(rope.freq_factors.data(), ff->data, rope.freq_factors.size() * sizeof(float));
  }

  c.layers.assign(c.n_layers, LayerConfig{false, rope});
  if (c.family == ArchFamily::kGemma3) {
    c.activation = Activation::kGeluTanh;
    c.qk_norm = true;
    c.sandwich_norms = true;
    c.norm_adds_one = false;  // llama.cpp's converter stores Gemma norms as (1 + w) already
    c.embed_scale = std::sqrt(static_cast<float>(c.hidden_size));
    NB_ASSIGN_OR_RETURN(c.sliding_window, opt_int("attention.sliding_window", 4096));
    int pattern;
    NB_ASSIGN_OR_RETURN(pattern, opt_int("attention.sliding_window_pattern", 6));
    double cap;
    NB_ASSIGN_OR_RETURN(cap, opt_float("final_logit_softcapping", 0.0));
    c.final_softcap = static_cast<float>(cap);
    // GGUF files carry no query_pre_attn_scalar; llama.cpp derives the attention scale from the
    // layer count (src/models/gemma3.cpp): the 62-layer model (27B) scales by
    // 1/sqrt(hidden / heads), the others by 1/sqrt(head_dim). Do the same.
    if (c.n_layers == 62) c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.hidden_size / c.n_heads));
    RopeConfig local;
    // Gemma 3's local layers: 10000 unless the file records it (as llama.cpp reads it).
    NB_ASSIGN_OR_RETURN(local.theta, opt_float("rope.freq_base_swa", 10000.0));
    for (int i = 0; i < c.n_layers; ++i) {
      c.layers[i].sliding = (i + 1) % pattern != 0;
      if (c.layers[i].sliding) c.layers[i].rope = local;
    }
  }

  if (f.has("tokenizer.ggml.bos_token_id")) {
    NB_ASSIGN_OR_RETURN(int64_t bos, f.get_int("tokenizer.ggml.bos_token_id"));
    c.bos_token_id = static_cast<int>(bos);
  }
  if (f.has("tokenizer.ggml.eos_token_id")) {
    NB_ASSIGN_OR_RETURN(int64_t eos, f.get_int("tokenizer.ggml.eos_token_id"));
    c.eos_token_ids.push_back(static_cast<int>(eos));
  }
  if (f.has("tokenizer.ggml.eot_token_id")) {
    NB_ASSIGN_OR_RETURN(int64_t eot, f.get_int("tokenizer.ggml.eot_token_id"));
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), eot) == c.eos_token_ids.end())
      c.eos_token_ids.push_back(static_cast<int>(eot));
  }
  c.dtype = "gguf";
  return c;
}

}  // namespace nibble

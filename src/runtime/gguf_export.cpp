#include "runtime/gguf_export.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <numbers>
#include <optional>
#include <set>

#include "io/gguf.h"
#include "model/gguf_loader.h"
#include "model/model.h"
#include "quant/import_util.h"
#include "tokenizer/gguf_tokenizer.h"

namespace nibble {

namespace {

using ojson = nlohmann::ordered_json;

// fp32 tensors owned in memory, in insertion order.
class F32Source : public TensorSource {
 public:
  explicit F32Source(std::string where) : where_(std::move(where)) {}
  void add(std::string name, std::vector<int64_t> shape, std::vector<float> data) {
    order_.push_back(name);
    tensors_[std::move(name)] = {std::move(shape), std::move(data)};
  }
  bool has(const std::string& name) const override { return tensors_.count(name) != 0; }
  Result<TensorRef> get(const std::string& name) const override {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return Status::not_found("{}: no tensor '{}'", where_, name);
    TensorRef r;
    r.name = name;
    r.dtype = DType::kF32;
    r.shape = it->second.shape;
    r.data = it->second.data.data();
    r.nbytes = it->second.data.size() * sizeof(float);
    r.file = where_;
    return r;
  }
  std::vector<std::string> names() const override { return order_; }
  std::string describe() const override { return where_; }

 private:
  struct T {
    std::vector<int64_t> shape;
    std::vector<float> data;
  };
  std::string where_;
  std::vector<std::string> order_;
  std::map<std::string, T> tensors_;
};

// A float that came from an f32 field, as the shortest decimal that reads back to it (1e-05,
// not 9.999999747378752e-06); parse_model_config rounds it to the same float.
double short_float(float f) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), f);
  double d = 0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

// Same inverse frequencies up to fp32 rounding.
bool same_rope(const RopeConfig& a, const RopeConfig& b, int head_dim) {
  const auto fa = rope_inv_freq(a, head_dim), fb = rope_inv_freq(b, head_dim);
  for (size_t i = 0; i < fa.size(); ++i)
    if (std::abs(fa[i] - fb[i]) > 2e-6 * std::abs(fa[i])) return false;
  return true;
}

// llama.cpp stores Llama 3.1's rope scaling as per-frequency divisors (rope_freqs.weight):
// 1 for short wavelengths, `factor` for long ones, 1 / ((1 - s) / factor + s) between, where
// s = (original_max * x - low) / (high - low) is linear in x = 1 / wavelength. A line through
// the blended divisors' s values gives the parameters back up to one free choice (they enter
// only through two ratios); low_freq_factor = 1 is Meta's value. With fewer than two blended
// divisors the line also passes through the last `factor` or the first 1 (any line that
// classifies every frequency the same way gives the same model). The result must reproduce
// the file's inverse frequencies.
Result<RopeConfig> llama3_from_factors(const RopeConfig& r, int head_dim) {
  const auto& ff = r.freq_factors;
  const int half = head_dim / 2;
  RopeConfig plain;
  plain.theta = r.theta;
  const double big = *std::max_element(ff.begin(), ff.end());
  std::vector<std::pair<double, double>> blend;  // (x, s)
  double x_big = -1, x_one = -1;  // the largest x divided by `factor`, the smallest left alone
  for (int i = 0; i < half; ++i) {
    const double x = 1.0 / std::pow(r.theta, 2.0 * i / head_dim) / (2 * std::numbers::pi);
    if (std::abs(ff[i] - big) <= 1e-6 * big) x_big = std::max(x_big, x);
    else if (std::abs(ff[i] - 1.0) <= 1e-6) x_one = x_one < 0 ? x : std::min(x_one, x);
    else blend.emplace_back(x, (1.0 / ff[i] - 1.0 / big) / (1.0 - 1.0 / big));
  }
  std::vector<std::vector<std::pair<double, double>>> fits;
  if (blend.size() >= 2) fits.push_back(blend);
  auto with = [&](double x, double s) {
    auto p = blend;
    p.emplace_back(x, s);
    return p;
  };
  if (x_big >= 0) fits.push_back(with(x_big, 0.0));
  if (x_one >= 0) fits.push_back(with(x_one, 1.0));
  if (blend.empty() && x_big >= 0 && x_one >= 0) fits.push_back({{x_big, 0.0}, {x_one, 1.0}});
  for (const auto& pts : fits) {
    if (pts.size() < 2) continue;
    double mx = 0, ms = 0;
    for (auto [x, s] : pts) mx += x, ms += s;
    mx /= pts.size(), ms /= pts.size();
    double sxx = 0, sxs = 0;
    for (auto [x, s] : pts) sxx += (x - mx) * (x - mx), sxs += (x - mx) * (s - ms);
    if (!(sxx > 0)) continue;
    const double a = sxs / sxx, b = ms - a * mx;
    if (!(a > 0) || !(b < 0)) continue;
    RopeConfig out = plain;
    out.type = RopeType::kLlama3;
    out.factor = big;
    out.low_freq_factor = 1.0;
    out.high_freq_factor = 1.0 - 1.0 / b;
    out.original_max_position = -a / b;
    if (same_rope(r, out, head_dim)) return out;
  }
  if (same_rope(r, plain, head_dim)) return plain;  // every divisor 1
  return Status::unsupported("rope_freqs.weight: no llama3 rope_scaling reproduces these frequency factors");
}

ojson rope_scaling_json(const RopeConfig& r) {
  switch (r.type) {
    case RopeType::kDefault: return nullptr;
    case RopeType::kLinear: return ojson{{"factor", r.factor}, {"rope_type", "linear"}};
    case RopeType::kLlama3:
      return ojson{{"factor", r.factor},
                   {"high_freq_factor", r.high_freq_factor},
                   {"low_freq_factor", r.low_freq_factor},
                   {"original_max_position_embeddings", r.original_max_position},
                   {"rope_type", "llama3"}};
  }
  return nullptr;
}


// The HF names a model of this family may have, in HF checkpoint order.
std::vector<std::string> candidate_names(const ModelConfig& c) {
  std::vector<std::string> out = {"model.embed_tokens.weight"};
  const bool gemma = c.family == ArchFamily::kGemma3;
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* s : {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
                          "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
                          "self_attn.v_proj.bias", "self_attn.o_proj.weight", "self_attn.q_norm.weight",
                          "self_attn.k_norm.weight", "post_attention_layernorm.weight"})
      out.push_back(p + s);
    if (gemma) out.push_back(p + "pre_feedforward_layernorm.weight");
    for (const char* s : {"mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"}) out.push_back(p + s);
    if (gemma) out.push_back(p + "post_feedforward_layernorm.weight");
  }
  out.push_back("model.norm.weight");
  out.push_back("lm_head.weight");
  return out;
}

}  // namespace

Result<ojson> hf_config_json(const ModelConfig& c) {
  const bool gemma = c.family == ArchFamily::kGemma3;
  ojson j;
  j["architectures"] = {c.architecture};
  j["model_type"] = gemma ? std::string("gemma3_text") : c.model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.n_layers;
  j["num_attention_heads"] = c.n_heads;
  j["num_key_value_heads"] = c.n_kv_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = short_float(c.norm_eps);
  j["hidden_act"] = c.activation == Activation::kSilu ? "silu" : "gelu_pytorch_tanh";
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (!gemma) j["attention_bias"] = c.attention_bias;
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  else if (!c.eos_token_ids.empty()) j["eos_token_id"] = c.eos_token_ids;

  // One rope for the full-attention layers (and, Gemma 3, one for the sliding ones).
  const RopeConfig* global = nullptr;
  const RopeConfig* local = nullptr;
  for (const auto& l : c.layers) {
    if (l.sliding && !local) local = &l.rope;
    if (!l.sliding && !global) global = &l.rope;
  }
  if (!global) global = local;
  RopeConfig g = *global;
  if (!g.freq_factors.empty()) {
    NB_ASSIGN_OR_RETURN(g, llama3_from_factors(g, c.head_dim));
  }
  j["rope_theta"] = g.theta;
  j["rope_scaling"] = rope_scaling_json(g);
  bool any_sliding = false;
  for (const auto& l : c.layers) any_sliding = any_sliding || l.sliding;
  if (any_sliding) {
    j["sliding_window"] = c.sliding_window;
    ojson types = ojson::array();
    for (const auto& l : c.layers) types.push_back(l.sliding ? "sliding_attention" : "full_attention");
    j["layer_types"] = types;
  } else {
    j["sliding_window"] = nullptr;
  }
  if (gemma) {
    if (local) j["rope_local_base_freq"] = local->theta;
    const double qpas = 1.0 / (static_cast<double>(c.attn_scale) * c.attn_scale);
    j["query_pre_attn_scalar"] = static_cast<int>(std::lround(qpas));
    j["final_logit_softcapping"] = c.final_softcap > 0 ? ojson(short_float(c.final_softcap)) : ojson(nullptr);
    j["attn_logit_softcapping"] = nullptr;
  }
  j["torch_dtype"] = "float32";

  // Read it back: everything the forward pass uses must come out the same.
  NB_ASSIGN_OR_RETURN(ModelConfig back, parse_model_config(nlohmann::json::parse(j.dump()), "config.json"));
  auto differs = [](const char* what) {
    return Status::unsupported("GGUF model: its {} cannot be written as a HuggingFace config.json", what);
  };
  if (back.family != c.family || back.vocab_size != c.vocab_size || back.hidden_size != c.hidden_size ||
      back.intermediate_size != c.intermediate_size || back.n_layers != c.n_layers || back.n_heads != c.n_heads ||
      back.n_kv_heads != c.n_kv_heads || back.head_dim != c.head_dim)
    return differs("shape");
  if (back.norm_eps != c.norm_eps || back.tie_word_embeddings != c.tie_word_embeddings ||
      back.attention_bias != c.attention_bias || back.qk_norm != c.qk_norm || back.activation != c.activation ||
      back.sandwich_norms != c.sandwich_norms || back.embed_scale != c.embed_scale)
    return differs("block structure");
  if (back.attn_scale != c.attn_scale || back.attn_softcap != c.attn_softcap || back.final_softcap != c.final_softcap)
    return differs("attention scale or softcap");
  for (int l = 0; l < c.n_layers; ++l) {
    if (back.layers[l].sliding != c.layers[l].sliding || (c.layers[l].sliding && back.sliding_window != c.sliding_window))
      return differs("sliding-window layout");
    if (!same_rope(back.layers[l].rope, c.layers[l].rope, c.head_dim)) return differs("rope");
  }
  return j;
}

Result<GgufAsHf> gguf_as_hf(const std::string& path, bool with_weights) {
  NB_ASSIGN_OR_RETURN(GgufFile file, GgufFile::open(path));
  NB_ASSIGN_OR_RETURN(ModelConfig config, config_from_gguf(file));
  GgufAsHf out;
  NB_ASSIGN_OR_RETURN(out.config, hf_config_json(config));

  // Tokenizer files (a file without tokenizer metadata, such as a test model, gets none).
  std::optional<Tokenizer> tok;
  const bool has_tok = file.has("tokenizer.ggml.model");
  if (has_tok) {
    NB_ASSIGN_OR_RETURN(out.tokenizer_json, gguf_tokenizer_json(file));
    NB_ASSIGN_OR_RETURN(Tokenizer t, Tokenizer::from_json(out.tokenizer_json));
    tok = std::move(t);
  }
  ojson tc = ojson::object();
  if (file.has("tokenizer.ggml.add_bos_token")) {
    auto v = file.get_bool("tokenizer.ggml.add_bos_token");
    if (v.is_ok()) tc["add_bos_token"] = v.value();
  }
  for (const auto& [key, var] : std::vector<std::pair<std::string, std::string>>{
           {"bos", "bos_token"}, {"eos", "eos_token"}, {"unknown", "unk_token"}, {"padding", "pad_token"}}) {
    const std::string k = "tokenizer.ggml." + key + "_token_id";
    if (!has_tok || !file.has(k)) continue;
    NB_ASSIGN_OR_RETURN(int64_t id, file.get_int(k));
    const std::string s = tok->id_to_token(static_cast<int32_t>(id));
    if (!s.empty()) tc[var] = s;
  }
  tc["model_max_length"] = config.max_position_embeddings;
  tc["tokenizer_class"] = "PreTrainedTokenizerFast";
  if (file.has("tokenizer.chat_template")) {
    NB_ASSIGN_OR_RETURN(std::string_view t, file.get_string("tokenizer.chat_template"));
    tc["chat_template"] = std::string(t);
  }
  out.tokenizer_config = std::move(tc);
  out.generation_config = ojson::object();
  if (config.bos_token_id >= 0) out.generation_config["bos_token_id"] = config.bos_token_id;
  if (out.config.contains("eos_token_id")) out.generation_config["eos_token_id"] = out.config["eos_token_id"];

  if (!with_weights) return out;

  // Weights: every tensor the model would bind, dequantized to fp32 in HF row order.
  GgufSource src(std::move(file), config);
  auto loader = src.quant_loader();
  auto weights = std::make_unique<F32Source>(path);
  std::set<std::string> used;
  const bool gemma = config.family == ArchFamily::kGemma3;
  for (const std::string& name : candidate_names(config)) {
    if (!src.has(name)) continue;
    const std::string g = src.gguf_name(name);
    const GgufTensor* t = src.file().find_tensor(g);
    used.insert(g);
    std::vector<float> data;
    if (t->shape.size() == 2) {
      NB_ASSIGN_OR_RETURN(std::unique_ptr<QuantWeight> q, loader->load(src, name, t->rows, t->cols));
      data.resize(static_cast<size_t>(t->rows * t->cols));
      const int64_t rows = t->rows, cols = t->cols;
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; ++r) q->dequant_row(r, data.data() + r * cols);
    } else {
      NB_ASSIGN_OR_RETURN(TensorRef ref, src.get(name));
      NB_ASSIGN_OR_RETURN(data, quant::read_floats(ref));
      // llama.cpp's converter stores Gemma norms as 1 + w; HF's Gemma3RMSNorm adds the 1.
      if (gemma && name.ends_with("norm.weight"))
        for (float& v : data) v -= 1.0f;
    }
    weights->add(name, t->shape, std::move(data));
  }
  for (const auto& t : src.file().tensors()) {
    if (used.count(t.name) || t.name == "rope_freqs.weight") continue;
    return Status::unsupported("{}: tensor '{}' has no HuggingFace counterpart that nibble knows", path, t.name);
  }
  out.weights = std::move(weights);
  return out;
}

Result<quant::QuantizeReport> quantize_any(const std::string& path, const std::string& out_dir,
                                           const quant::QuantizeOptions& opt) {
  if (!(path.ends_with(".gguf"))) return quant::quantize_model(path, out_dir, opt);
  NB_TRY(quant::check_quantize_options(opt));  // before the (long) dequantization
  NB_ASSIGN_OR_RETURN(GgufAsHf hf, gguf_as_hf(path));
  quant::ModelInput in;
  in.config = hf.config;
  in.tensors = hf.weights.get();
  if (!hf.tokenizer_json.empty()) in.files.emplace_back("tokenizer.json", hf.tokenizer_json);
  in.files.emplace_back("tokenizer_config.json", hf.tokenizer_config.dump(2) + "\n");
  in.files.emplace_back("generation_config.json", hf.generation_config.dump(2) + "\n");
  return quant::quantize_model(in, out_dir, opt);
}

}  // namespace nibble

// A loaded decoder-only transformer. One class serves every supported architecture: the
// families differ in weight names and in switches of ModelConfig, not in code paths.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/model_config.h"
#include "io/tensor_source.h"
#include "kv/kv_cache.h"
#include "model/batch.h"
#include "model/executor.h"
#include "ops/ops.h"
#include "quant/quant_loader.h"

namespace nibble {

struct LayerWeights {
  ops::WeightView attn_norm;                 // [hidden]
  ops::WeightView q, k, v, o;                // [q_dim, hidden], [kv_dim, hidden] x2, [hidden, q_dim]
  ops::WeightView q_bias, k_bias, v_bias;    // [q_dim], [kv_dim] (attention_bias)
  ops::WeightView q_norm, k_norm;            // [head_dim] (qk_norm)
  ops::WeightView post_attn_norm;            // [hidden] (sandwich_norms)
  ops::WeightView ffn_norm;                  // [hidden]
  ops::WeightView gate, up, down;            // [inter, hidden] x2, [hidden, inter]
  ops::WeightView post_ffn_norm;             // [hidden] (sandwich_norms)
};

struct ModelWeights {
  ops::WeightView embed;       // [vocab, hidden]
  ops::WeightView final_norm;  // [hidden]
  ops::WeightView lm_head;     // [vocab, hidden]; the embedding when tied
  std::vector<LayerWeights> layers;
};

// What binding saw: for `nibble info`.
struct WeightStats {
  uint64_t n_params = 0;
  uint64_t n_bytes = 0;
  std::map<std::string, uint64_t> params_by_dtype;
};

// How the CPU forward pass rounds. kExact: fp32 on exactly dequantized weights (the oracle).
// kLlamaCpp: llama.cpp's CPU roundings (Q8 activations and integer dots for ggml-quantized
// weights, F16 KV cache, its flash attention, RoPE, RMSNorm and SiLU), so that greedy decoding
// of a GGUF file follows llama.cpp's tokens at near-ties (src/ops/cpu/llamacpp.h).
enum class Numerics { kExact, kLlamaCpp };

struct LoadOptions {
  // Read the weights in ahead of the first forward pass (a progress bar on a terminal).
  // Off for commands that only read metadata, such as `nibble info`.
  bool prefault = true;
  Numerics numerics = Numerics::kExact;
};

class Model : public Executor {
 public:
  // PATH is a folder with config.json (+ generation_config.json) and safetensors weights, or
  // a .gguf file.
  static Result<std::unique_ptr<Model>> load(const std::string& path, const LoadOptions& options = {});
  // Any weight source, e.g. random weights for benchmarks. `quant` builds the matrices the
  // source stores quantized; by default the one config.quantization_config names.
  static Result<std::unique_ptr<Model>> create(ModelConfig config, std::unique_ptr<TensorSource> source,
                                               std::unique_ptr<QuantLoader> quant = nullptr);

  const ModelConfig& config() const override { return config_; }
  std::string device_name() const override { return "cpu"; }
  const WeightStats& stats() const { return stats_; }
  Numerics numerics() const { return numerics_; }
  // The bound weights and RoPE tables, for backends that copy them elsewhere (src/model/cuda).
  const ModelWeights& weights() const { return w_; }
  const std::vector<float>& inv_freq(int layer) const { return inv_freq_[layer]; }

  // A cache sized for `n_tokens` positions in total across sequences (host memory, fp32).
  std::unique_ptr<KvCache> make_cache(int n_tokens, int block_size = 16) const;
  Result<std::unique_ptr<KvCache>> make_kv_cache(int n_tokens, int block_size = 16) const override {
    return make_cache(n_tokens, block_size);
  }

  // Runs the batch; logits: [batch.n_logit_rows(), vocab] fp32, rows in sequence order.
  // Advances nothing: the caller updates each BlockTable's n_tokens.
  Status forward(const ForwardBatch& batch, KvCache& kv, std::vector<float>& logits) const override;

 private:
  Model() = default;
  void forward_layer(int l, const ForwardBatch& batch, KvCache& kv, std::span<const ops::AttnSeq> attn_seqs,
                     std::vector<float>& x) const;

  ModelConfig config_;
  std::unique_ptr<TensorSource> source_;  // owns the memory the weights point into
  std::vector<std::unique_ptr<QuantWeight>> quant_weights_;  // quantized weights, if any
  ModelWeights w_;
  WeightStats stats_;
  std::vector<std::vector<float>> inv_freq_;  // [n_layers][head_dim / 2]
  Numerics numerics_ = Numerics::kExact;
  bool interleaved_qk_ = false;  // llama.cpp keeps Q/K rows interleaved (GGUF arch `llama`)
};

// Per-family weight binding (model/llama.cpp, model/gemma3.cpp) and the parts they share.
class WeightBinder;
Status bind_llama_family(const ModelConfig& c, WeightBinder& b, ModelWeights& w);
Status bind_gemma3(const ModelConfig& c, WeightBinder& b, ModelWeights& w);
Status bind_attention(const ModelConfig& c, WeightBinder& b, const std::string& prefix, LayerWeights& L);
Status bind_mlp(const ModelConfig& c, WeightBinder& b, const std::string& prefix, LayerWeights& L);
Status bind_ends(const ModelConfig& c, WeightBinder& b, ModelWeights& w);  // embeddings, final norm, LM head

// RoPE inverse frequencies for one layer's rope configuration.
std::vector<float> rope_inv_freq(const RopeConfig& rope, int head_dim);

}  // namespace nibble

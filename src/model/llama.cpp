// Llama-family weight binding: LlamaForCausalLM (Llama 2, 3, 3.1-3.3), MistralForCausalLM,
// Qwen2ForCausalLM (q/k/v biases) and Qwen3ForCausalLM (q/k RMSNorm, explicit head_dim).
// HF names: model.embed_tokens, model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
// self_attn.{q,k}_norm, post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm, lm_head.
// The parts every family shares are bound here too (bind_attention, bind_mlp, bind_ends).
#include "model/model.h"
#include "model/weight_binder.h"

namespace nibble {

Status bind_attention(const ModelConfig& c, WeightBinder& b, const std::string& p, LayerWeights& L) {
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim();
  NB_TRY(b.bind(p + "input_layernorm.weight", 0, h, L.attn_norm));
  NB_TRY(b.bind(p + "self_attn.q_proj.weight", q, h, L.q));
  NB_TRY(b.bind(p + "self_attn.k_proj.weight", kv, h, L.k));
  NB_TRY(b.bind(p + "self_attn.v_proj.weight", kv, h, L.v));
  NB_TRY(b.bind(p + "self_attn.o_proj.weight", h, q, L.o));
  if (c.attention_bias) {
    NB_TRY(b.bind(p + "self_attn.q_proj.bias", 0, q, L.q_bias));
    NB_TRY(b.bind(p + "self_attn.k_proj.bias", 0, kv, L.k_bias));
    NB_TRY(b.bind(p + "self_attn.v_proj.bias", 0, kv, L.v_bias));
  }
  if (c.qk_norm) {
    NB_TRY(b.bind(p + "self_attn.q_norm.weight", 0, c.head_dim, L.q_norm));
    NB_TRY(b.bind(p + "self_attn.k_norm.weight", 0, c.head_dim, L.k_norm));
  }
  return Status::ok();
}

Status bind_mlp(const ModelConfig& c, WeightBinder& b, const std::string& p, LayerWeights& L) {
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  NB_TRY(b.bind(p + "mlp.gate_proj.weight", f, h, L.gate));
  NB_TRY(b.bind(p + "mlp.up_proj.weight", f, h, L.up));
  NB_TRY(b.bind(p + "mlp.down_proj.weight", h, f, L.down));
  return Status::ok();
}

Status bind_ends(const ModelConfig& c, WeightBinder& b, ModelWeights& w) {
  NB_TRY(b.bind("model.embed_tokens.weight", c.vocab_size, c.hidden_size, w.embed));
  NB_TRY(b.bind("model.norm.weight", 0, c.hidden_size, w.final_norm));
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed;
    return Status::ok();
  }
  return b.bind("lm_head.weight", c.vocab_size, c.hidden_size, w.lm_head);
}

Status bind_llama_family(const ModelConfig& c, WeightBinder& b, ModelWeights& w) {
  NB_TRY(bind_ends(c, b, w));
  w.layers.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    NB_TRY(bind_attention(c, b, p, w.layers[i]));
    NB_TRY(b.bind(p + "post_attention_layernorm.weight", 0, c.hidden_size, w.layers[i].ffn_norm));
    NB_TRY(bind_mlp(c, b, p, w.layers[i]));
  }
  return Status::ok();
}

}  // namespace nibble

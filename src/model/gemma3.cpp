// Gemma 3 (text) weight binding: four norms per block (input, post_attention,
// pre_feedforward, post_feedforward) around the shared attention and MLP. The (1 + w) norms,
// the embedding scale, GeLU-tanh, sliding layers and softcaps are switches in ModelConfig.
#include "model/model.h"
#include "model/weight_binder.h"

namespace nibble {

Status bind_gemma3(const ModelConfig& c, WeightBinder& b, ModelWeights& w) {
  const int64_t h = c.hidden_size;
  NB_TRY(bind_ends(c, b, w));
  w.layers.resize(c.n_layers);
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    LayerWeights& L = w.layers[i];
    NB_TRY(bind_attention(c, b, p, L));  // Gemma 3 always has q/k norms: qk_norm is set
    NB_TRY(b.bind(p + "post_attention_layernorm.weight", 0, h, L.post_attn_norm));
    NB_TRY(b.bind(p + "pre_feedforward_layernorm.weight", 0, h, L.ffn_norm));
    NB_TRY(b.bind(p + "post_feedforward_layernorm.weight", 0, h, L.post_ffn_norm));
    NB_TRY(bind_mlp(c, b, p, L));
  }
  return Status::ok();
}

}  // namespace nibble

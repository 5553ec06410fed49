// The forward pass shared by every family: embedding, N blocks of (norm, attention, norm, MLP)
// with residuals, final norm, LM head on the rows whose logits are wanted. Buffers are
// [T, width] fp32 matrices, T = tokens in the batch.
#include <algorithm>

#include "model/model.h"
#include "ops/cpu/llamacpp.h"

namespace nibble {

namespace {
const ops::WeightView kNone{};

// The ops whose rounding the numerics mode picks (Numerics::kLlamaCpp: src/ops/cpu/llamacpp.h).
// One branch per call; the exact path is unchanged.
struct Ops {
  bool lc;
  void norm(const float* x, const ops::WeightView& w, int n, int dim, const ModelConfig& c, float* out) const {
    if (lc) ops::llamacpp::rmsnorm(x, w, n, dim, c.norm_eps, c.norm_adds_one, out);
    else ops::rmsnorm(x, w, n, dim, c.norm_eps, c.norm_adds_one, out);
  }
  void matmul(const float* x, const ops::WeightView& w, const ops::WeightView& b, int m, float* y) const {
    if (lc) ops::llamacpp::matmul(x, w, b, m, y);
    else ops::matmul(x, w, b, m, y);
  }
};
}  // namespace

void Model::forward_layer(int l, const ForwardBatch& batch, KvCache& kv,
                          std::span<const ops::AttnSeq> attn_seqs, std::vector<float>& x) const {
  const ModelConfig& c = config_;
  const LayerWeights& L = w_.layers[l];
  const int T = batch.n_tokens();
  const int h = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), f = c.intermediate_size;

  std::vector<float> hn(static_cast<size_t>(T) * h);     // [T, hidden]
  std::vector<float> q(static_cast<size_t>(T) * qd);     // [T, n_heads, head_dim]
  std::vector<float> k(static_cast<size_t>(T) * kvd);    // [T, n_kv_heads, head_dim]
  std::vector<float> v(static_cast<size_t>(T) * kvd);
  std::vector<float> attn(static_cast<size_t>(T) * qd);  // [T, n_heads, head_dim]

  const Ops o{numerics_ == Numerics::kLlamaCpp};

  // Attention.
  o.norm(x.data(), L.attn_norm, T, h, c, hn.data());
  o.matmul(hn.data(), L.q, L.q_bias, T, q.data());
  o.matmul(hn.data(), L.k, L.k_bias, T, k.data());
  o.matmul(hn.data(), L.v, L.v_bias, T, v.data());
  if (c.qk_norm) {
    o.norm(q.data(), L.q_norm, T * c.n_heads, c.head_dim, c, q.data());
    o.norm(k.data(), L.k_norm, T * c.n_kv_heads, c.head_dim, c, k.data());
  }
  const RopeConfig& rc = c.layers[l].rope;
  if (o.lc && rc.type != RopeType::kLlama3) {  // GGUF files carry Llama 3 scaling as freq_factors
    ops::llamacpp::RopeParams rp;
    rp.freq_base = static_cast<float>(rc.theta);
    rp.freq_scale = rc.type == RopeType::kLinear ? static_cast<float>(1.0 / rc.factor) : 1.0f;
    rp.freq_factors = rc.freq_factors.empty() ? nullptr : rc.freq_factors.data();
    ops::llamacpp::rope(q.data(), batch.positions.data(), T, c.n_heads, c.head_dim, rp);
    ops::llamacpp::rope(k.data(), batch.positions.data(), T, c.n_kv_heads, c.head_dim, rp);
  } else {
    ops::rope(q.data(), batch.positions.data(), T, c.n_heads, c.head_dim, inv_freq_[l].data());
    ops::rope(k.data(), batch.positions.data(), T, c.n_kv_heads, c.head_dim, inv_freq_[l].data());
  }
  ops::AttnParams ap;
  ap.n_heads = c.n_heads;
  ap.scale = c.attn_scale;
  ap.softcap = c.attn_softcap;
  ap.window = c.layers[l].sliding ? c.sliding_window : 0;
  if (o.lc && c.family == ArchFamily::kGemma3) {
    // llama.cpp's Gemma 3 graph scales Q before attention (then f16), not the scores.
    for (auto& e : q) e *= ap.scale;
    ap.scale = 1.0f;
  }
  if (o.lc) {
    ops::llamacpp::kv_write_f16(k.data(), v.data(), batch.slots.data(), T, kv.layout(), kv.k(l), kv.v(l));
    ops::llamacpp::paged_attention(q.data(), batch.positions.data(), attn_seqs, kv.k(l), kv.v(l), kv.layout(), ap,
                                   interleaved_qk_, attn.data());
  } else {
    ops::kv_write(k.data(), v.data(), batch.slots.data(), T, kv.layout(), kv.k(l), kv.v(l));
    ops::paged_attention(q.data(), batch.positions.data(), attn_seqs, kv.k(l), kv.v(l), kv.layout(), ap,
                         attn.data());
  }
  o.matmul(attn.data(), L.o, kNone, T, hn.data());
  if (c.sandwich_norms) o.norm(hn.data(), L.post_attn_norm, T, h, c, hn.data());
  for (size_t i = 0; i < x.size(); ++i) x[i] += hn[i];

  // MLP.
  std::vector<float> gate(static_cast<size_t>(T) * f), up(static_cast<size_t>(T) * f);  // [T, inter]
  o.norm(x.data(), L.ffn_norm, T, h, c, hn.data());
  o.matmul(hn.data(), L.gate, kNone, T, gate.data());
  o.matmul(hn.data(), L.up, kNone, T, up.data());
  if (c.activation == Activation::kGeluTanh)
    ops::gelu_tanh_mul(gate.data(), up.data(), static_cast<int64_t>(T) * f, gate.data());
  else if (o.lc)
    ops::llamacpp::silu_mul(gate.data(), up.data(), static_cast<int64_t>(T) * f, gate.data());
  else
    ops::silu_mul(gate.data(), up.data(), static_cast<int64_t>(T) * f, gate.data());
  o.matmul(gate.data(), L.down, kNone, T, hn.data());
  if (c.sandwich_norms) o.norm(hn.data(), L.post_ffn_norm, T, h, c, hn.data());
  for (size_t i = 0; i < x.size(); ++i) x[i] += hn[i];
}

Status Model::forward(const ForwardBatch& batch, KvCache& kv, std::vector<float>& logits) const {
  const ModelConfig& c = config_;
  const int T = batch.n_tokens();
  if (T == 0) {
    logits.clear();
    return Status::ok();
  }
  for (int t = 0; t < T; ++t)
    if (batch.tokens[t] < 0 || batch.tokens[t] >= c.vocab_size)
      return Status::invalid("token id {} at batch index {} is outside the vocabulary [0, {})",
                             batch.tokens[t], t, c.vocab_size);

  std::vector<ops::AttnSeq> attn_seqs;
  for (const auto& s : batch.seqs) {
    const int last = s.q_begin + s.n_tokens - 1;
    const int need = batch.positions[last] + 1;
    if (static_cast<int>(s.table->blocks.size()) * kv.block_size() < need)
      return Status::internal("sequence at batch index {} has blocks for {} positions, needs {}",
                              s.q_begin, s.table->blocks.size() * kv.block_size(), need);
    attn_seqs.push_back({s.q_begin, s.n_tokens, s.table->blocks.data()});
  }

  std::vector<float> x(static_cast<size_t>(T) * c.hidden_size);  // [T, hidden] residual stream
  ops::embedding(w_.embed, batch.tokens.data(), T, c.embed_scale, x.data());
  for (int l = 0; l < c.n_layers; ++l) forward_layer(l, batch, kv, attn_seqs, x);

  // Only the wanted rows go through the final norm and the LM head: for a long prefill that
  // is one row instead of T.
  std::vector<int> rows;
  for (const auto& s : batch.seqs) {
    if (s.all_logits)
      for (int i = 0; i < s.n_tokens; ++i) rows.push_back(s.q_begin + i);
    else
      rows.push_back(s.q_begin + s.n_tokens - 1);
  }
  const int R = static_cast<int>(rows.size());
  std::vector<float> sel(static_cast<size_t>(R) * c.hidden_size);  // [R, hidden]
  for (int r = 0; r < R; ++r)
    std::copy_n(x.data() + static_cast<size_t>(rows[r]) * c.hidden_size, c.hidden_size,
                sel.data() + static_cast<size_t>(r) * c.hidden_size);
  const Ops o{numerics_ == Numerics::kLlamaCpp};
  o.norm(sel.data(), w_.final_norm, R, c.hidden_size, c, sel.data());
  logits.resize(static_cast<size_t>(R) * c.vocab_size);
  o.matmul(sel.data(), w_.lm_head, kNone, R, logits.data());
  if (c.final_softcap > 0) ops::softcap(logits.data(), static_cast<int64_t>(logits.size()), c.final_softcap);
  return Status::ok();
}

}  // namespace nibble

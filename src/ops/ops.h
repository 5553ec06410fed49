// Backend-neutral op signatures. Every op takes plain pointers plus explicit sizes and batch
// metadata; none knows about models, sequences or the scheduler. The CPU versions here are the
// correctness oracle for every other backend.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/dtype.h"
#include "quant/quant_weight.h"

namespace nibble::ops {

// A matrix as stored in the checkpoint: [rows, cols] row-major, f32, f16 or bf16, or a
// quantized matrix (quant != nullptr; data unused). A linear layer's weight is
// [out_features, in_features]; a vector (norm weight, bias) has rows == 1.
struct WeightView {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  const QuantWeight* quant = nullptr;
  bool empty() const { return data == nullptr && quant == nullptr; }
};

// Widens row `r` of w into out[0..cols).
void load_row(const WeightView& w, int64_t r, float* out);

// out[t, :] = table[tokens[t], :] * scale.   out: [n, table.cols]
void embedding(const WeightView& table, const int32_t* tokens, int n, float scale, float* out);

// out[t, :] = x[t, :] / rms(x[t, :]) * (w or 1 + w).   x, out: [n, dim] (may alias); w: [dim]
void rmsnorm(const float* x, const WeightView& w, int n, int dim, float eps, bool add_one, float* out);

// y[m, :] = x[m, :] @ w^T (+ bias).   x: [m, w.cols], w: [n = w.rows, k = w.cols], y: [m, n]
// fp32 accumulation; the sum order does not depend on the thread count.
void matmul(const float* x, const WeightView& w, const WeightView& bias, int m, float* y);

// Rotary embedding, rotate-half (NeoX) pairing (i, i + head_dim/2), applied in place.
// x: [n_tokens, n_heads, head_dim]; positions: [n_tokens]; inv_freq: [head_dim / 2]
void rope(float* x, const int32_t* positions, int n_tokens, int n_heads, int head_dim,
          const float* inv_freq);

// out = act(gate) * up.  gate, up, out: [n] (out may alias gate)
void silu_mul(const float* gate, const float* up, int64_t n, float* out);
void gelu_tanh_mul(const float* gate, const float* up, int64_t n, float* out);

// x = cap * tanh(x / cap), in place.  x: [n]
void softcap(float* x, int64_t n, float cap);

// ---- Paged KV cache and attention -------------------------------------------------------
// Cache layout per layer: k, v: [n_blocks, block_size, n_kv_heads, head_dim].

struct KvLayout {
  int block_size = 16;
  int n_kv_heads = 0;
  int head_dim = 0;
};

// Writes each token's k/v to its slot (slot = block * block_size + offset).
// k, v: [n_tokens, n_kv_heads, head_dim]; slots: [n_tokens]
void kv_write(const float* k, const float* v, const int32_t* slots, int n_tokens,
              const KvLayout& layout, float* k_cache, float* v_cache);

// One sequence's part of a batch for attention.
struct AttnSeq {
  int q_begin = 0;   // first query row in the batch
  int n_q = 0;       // query rows of this sequence
  const int32_t* block_table = nullptr;  // [ceil(context / block_size)]
};

// One query row of a batch and the sequence it belongs to: with a head, the unit of work of the
// CPU attention kernels, listed flat so that threads balance long and short sequences.
struct AttnRow {
  const AttnSeq* seq;
  int t;  // the row in the batch
};
std::vector<AttnRow> attention_rows(std::span<const AttnSeq> seqs);

struct AttnParams {
  int n_heads = 0;     // query heads; n_heads / n_kv_heads queries share a kv head (GQA)
  float scale = 1.0f;  // applied to q.k
  float softcap = 0.0f;  // 0 = none
  int window = 0;      // 0 = full causal; else keys in (pos - window, pos]
};

// Causal attention of each query (at positions[t]) over its sequence's cached keys
// [0, positions[t]] (or the window). q: [n_tokens, n_heads, head_dim]; out: same shape.
void paged_attention(const float* q, const int32_t* positions, std::span<const AttnSeq> seqs,
                     const float* k_cache, const float* v_cache, const KvLayout& layout,
                     const AttnParams& p, float* out);

}  // namespace nibble::ops

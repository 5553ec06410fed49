// The per-token CUDA ops, twins of src/ops/cpu (ops.h): bf16 activations in and out (raw bits),
// fp32 arithmetic inside. Pointers are device pointers; sizes are explicit. Each runs on the
// engine's stream and returns launch errors as Status.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "ops/cuda/device.h"

namespace nibble::cuda {

// h = x (+ residual); if residual_out: residual_out = bf16(h) (may alias residual or x);
// out = bf16(h / rms(h) * (w or 1 + w)).   x, residual, residual_out, out: [n, dim]; w: [dim]
Status rmsnorm(const uint16_t* x, const uint16_t* residual, uint16_t* residual_out, const uint16_t* w,
               int n, int dim, float eps, bool add_one, uint16_t* out, Stream& s);

// Rotate-half RoPE in place. x: [n_tokens, n_heads, head_dim]; positions: [n_tokens];
// inv_freq: [head_dim / 2] fp32 (all device pointers).
Status rope(uint16_t* x, const int32_t* positions, int n_tokens, int n_heads, int head_dim,
            const float* inv_freq, Stream& s);

// out = act(gate) * up.  gate, up, out: [n] (out may alias gate).
Status silu_mul(const uint16_t* gate, const uint16_t* up, int64_t n, uint16_t* out, Stream& s);
Status gelu_tanh_mul(const uint16_t* gate, const uint16_t* up, int64_t n, uint16_t* out, Stream& s);

// A pipelined step's links to the step before it (Executor::submit): a negative id -1 - r in its
// tokens or in its penalty histories means picks[r]. Device pointers; `hist` (the `*n_hist`
// history ids, rewritten in place) is null when the step does not sample.
struct PickLinks {
  const int32_t* picks = nullptr;
  int32_t* hist = nullptr;
  const int32_t* n_hist = nullptr;
};

// out[t, :] = table[tokens[t], :] * scale.  table: [vocab, dim]; out: [n, dim]. A token outside
// [0, vocab) gives a row of zeros (the host validates ids; this only keeps the read in bounds).
// With `links.picks`, placeholders are resolved first (the step's first kernel does it, so
// everything after reads real ids).
Status embedding(const uint16_t* table, int64_t vocab, int dim, const int32_t* tokens, int n, float scale,
                 uint16_t* out, Stream& s, PickLinks links = {});

// ---- paged KV cache (docs/engine.md): per layer k, v: [n_blocks, block_size, n_kv_heads, head_dim]
enum class CacheType : uint8_t { kF32, kBF16 };

// Writes each token's k/v to its slot.  k, v: [n_tokens, n_kv_heads, head_dim] bf16; slots: [n_tokens].
Status kv_write(const uint16_t* k, const uint16_t* v, const int32_t* slots, int n_tokens, int n_kv_heads,
                int head_dim, CacheType type, void* k_cache, void* v_cache, Stream& s);

// Decode attention with GQA: each token t (one query row per sequence step) attends to its
// sequence's cached keys [first, positions[t]] (first = max(0, pos - window + 1) with a window),
// read through block_tables[token_seq[t] * max_blocks + j].
// q, out: [n_tokens, n_heads, head_dim] bf16; head_dim <= 256 and a multiple of 8.
// How the bf16 path's context splits of a head are merged: by the last of them to finish, through
// global memory, or inside a thread-block cluster (sm_90, head_dim <= 128, a context of at most
// 2,048 keys, one wave of clusters; chosen by kAuto when they take at most a third of the device's
// co-resident clusters, e.g. batch 1; NIBBLE_ATTN_CLUSTER=0 turns that choice off). kCluster
// where a cluster does not apply is refused (unsupported).
enum class DecodeMerge : uint8_t { kAuto, kGlobal, kCluster };

struct DecodeAttnParams {
  int n_heads = 0, n_kv_heads = 0, head_dim = 0, block_size = 16;
  int max_blocks = 0;    // row stride of block_tables
  float scale = 1.0f;
  float softcap = 0.0f;  // 0 = none
  int window = 0;        // 0 = full causal
  CacheType cache = CacheType::kBF16;
  DecodeMerge merge = DecodeMerge::kAuto;
};
Status paged_decode_attention(const uint16_t* q, const int32_t* positions, const int32_t* token_seq,
                              const int32_t* block_tables, const void* k_cache, const void* v_cache,
                              int n_tokens, const DecodeAttnParams& p, uint16_t* out, Stream& s);

// With a bf16 cache, paged_decode_attention splits each token's context over several blocks and
// merges their partials through Stream::scratch. The most scratch (bytes, counters) it uses for any
// n_tokens in 1..max_tokens with these parameters: call s.scratch() with it once before capturing
// graphs, so that no later call grows (moves) the scratch a graph points into.
struct ScratchNeed {
  size_t bytes = 0, counters = 0;
};
ScratchNeed paged_decode_attention_scratch(int max_tokens, const DecodeAttnParams& p, const DeviceInfo& info);

// ---- small per-token ops (token_ops.cu) -----------------------------------------------------

// x = cap * tanh(x / cap) in place (logit softcapping).  x: [n] fp32; cap > 0.
Status softcap_f32(float* x, int64_t n, float cap, Stream& s);

// y[t, :] = bf16(y[t, :] + bias) in place.  y: [T, n] bf16; bias: [n] fp32.
Status add_bias(uint16_t* y, const float* bias, int T, int n, Stream& s);

// out[i, :] = x[rows[i], :].  x: [*, dim] bf16; rows: [n_rows]; out: [n_rows, dim].
Status gather_rows(const uint16_t* x, const int32_t* rows, int n_rows, int dim, uint16_t* out, Stream& s);

// out[t, j] = act(gate[t, j]) * up[t, j], act = silu or gelu_tanh; gate_up: [T, 2f] bf16, out:
// [T, f] bf16. Stacked: gate = columns [0, f), up = [f, 2f). interleaved8: the layout of a gate/up
// weight interleaved for the GEMV's gated epilogue (w4_interleave_glu): columns [16i, 16i + 8) are
// gate [8i, 8i + 8), the next 8 up; f % 8 == 0.
Status act_mul_fused(const uint16_t* gate_up, int T, int f, bool gelu_tanh, uint16_t* out, Stream& s,
                     bool interleaved8 = false);

}  // namespace nibble::cuda

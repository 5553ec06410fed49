// The llama.cpp-compatible numerics mode of the CPU backend: the ops whose rounding differs
// from nibble's exact fp32 path, recomputed the way llama.cpp's CPU backend (commit
// 0c1e57098bba, ggml 0.25.3, built -march=native by g++ 12 on an AVX-512 x86-64) computes them,
// so that greedy decoding picks the same tokens at near-ties. Opt-in (`--numerics llamacpp`);
// slower than the exact path, and not an oracle: it reproduces llama.cpp's roundings,
// including the lossy ones. docs/gguf.md lists what is emulated and what mattered.
#pragma once

#include <cstdint>
#include <span>

#include "ops/ops.h"

namespace nibble::ops::llamacpp {

// y = x @ w^T (+ bias). ggml-quantized weights of the types q8::vec_dot_type() knows: each row
// of x quantized to Q8_0/Q8_1, integer block dots (q8_dot.h). Anything else: ops::matmul.
void matmul(const float* x, const WeightView& w, const WeightView& bias, int m, float* y);

// ggml_rms_norm then ggml_mul: sum of f32 squares in double, mean rounded to f32,
// scale = 1.0f / sqrtf(mean + eps), out = (x * scale) * w.
void rmsnorm(const float* x, const WeightView& w, int n, int dim, float eps, bool add_one, float* out);

// ggml_rope on nibble's rotate-half layout (llama.cpp rotates the same pairs, adjacent in the
// `llama` architecture's GGUF row order). ggml's angle for pair i is theta_i = pos *
// theta_scale^i by repeated f32 multiplication (theta_scale = powf(base, -2/dim)), not
// pos * inv_freq[i]; divided by freq_factors[i] if given, times freq_scale; cosf/sinf.
struct RopeParams {
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;
  const float* freq_factors = nullptr;  // [head_dim / 2] or null
};
void rope(float* x, const int32_t* positions, int n_tokens, int n_heads, int head_dim, const RopeParams& p);

// silu(gate) * up with ggml's AVX-512 silu: x / (1 + expf_poly(-x)), expf_poly the
// polynomial ggml_v_expf (not libm's expf).
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

// llama.cpp's default KV cache is F16: K and V are rounded to f16 when written (stored here
// as the f32 value of that f16, in nibble's f32 cache).
void kv_write_f16(const float* k, const float* v, const int32_t* slots, int n_tokens, const KvLayout& layout,
                  float* k_cache, float* v_cache);

// ggml's CPU flash attention (on by default, "auto"), one query row at a time: q rounded to
// f16; q.k with ggml_vec_dot_f16's lane order (over llama.cpp's element order: `interleaved`
// for the `llama` architecture, whose Q/K rows nibble un-interleaved at load); online softmax
// over the keys in position order with an f16 V accumulator (rounded after every key) and
// S = fma(S, ms, vs); out = f32(acc) * (1 / S). Valid for the paths llama.cpp takes for fewer
// than 64 query rows per sequence and fewer than 512 KV cells (longer prompts use a tiled
// kernel, longer contexts a split-KV reduction, neither emulated).
void paged_attention(const float* q, const int32_t* positions, std::span<const AttnSeq> seqs, const float* k_cache,
                     const float* v_cache, const KvLayout& layout, const AttnParams& p, bool interleaved, float* out);

// ggml_v_expf (AVX-512 variant), one lane: for tests.
float expf_poly(float x);

}  // namespace nibble::ops::llamacpp

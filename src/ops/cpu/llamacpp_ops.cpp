// The llama.cpp-compatible numerics mode (see llamacpp.h). Each function names the ggml code
// it reproduces; every rounding is explicit, so contraction is off for this file.
#include "ops/cpu/llamacpp.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "core/dtype.h"
#include "ops/cpu/q8_dot.h"
#include "quant/ggml_matrix.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace nibble::ops::llamacpp {

namespace {
inline float round_f16(float x) { return f16_to_f32(f32_to_f16(x)); }
}  // namespace

void matmul(const float* x, const WeightView& w, const WeightView& bias, int m, float* y) {
  const auto* g = dynamic_cast<const GgmlMatrix*>(w.quant);
  const std::optional<GgmlType> act_type = g ? q8::vec_dot_type(g->type()) : std::nullopt;
  if (!act_type) {
    ops::matmul(x, w, bias, m, y);
    return;
  }
  const int64_t n = w.rows, k = w.cols;
  const bool q8_1 = *act_type == GgmlType::Q8_1;
  const size_t act_row = static_cast<size_t>(k / q8::kQK) * (q8_1 ? sizeof(q8::BlockQ8_1) : sizeof(q8::BlockQ8_0));
  std::vector<uint8_t> act(act_row * m);  // [m] rows of Q8 blocks
  for (int i = 0; i < m; ++i) {
    const float* xr = x + static_cast<int64_t>(i) * k;
    if (q8_1) q8::quantize_row_q8_1(xr, reinterpret_cast<q8::BlockQ8_1*>(&act[i * act_row]), k);
    else q8::quantize_row_q8_0(xr, reinterpret_cast<q8::BlockQ8_0*>(&act[i * act_row]), k);
  }
  std::vector<float> b;
  if (!bias.empty()) {
    b.resize(n);
    load_row(bias, 0, b.data());
  }
  const GgmlType t = g->type();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* wr = g->row_blocks(r);
    for (int i = 0; i < m; ++i) {
      float v = q8::vec_dot(t, k, wr, &act[i * act_row]);
      if (!b.empty()) v += b[r];  // ggml_add after the matmul
      y[static_cast<int64_t>(i) * n + r] = v;
    }
  }
}

void rmsnorm(const float* x, const WeightView& w, int n, int dim, float eps, bool add_one, float* out) {
  std::vector<float> weight(dim);
  load_row(w, 0, weight.data());
  if (add_one)
    for (auto& v : weight) v += 1.0f;
  for (int t = 0; t < n; ++t) {
    const float* xr = x + static_cast<int64_t>(t) * dim;
    float* o = out + static_cast<int64_t>(t) * dim;
    double sum = 0;  // ggml_float; each square rounded to f32 first
    for (int i = 0; i < dim; ++i) sum += static_cast<double>(xr[i] * xr[i]);
    const float mean = static_cast<float>(sum / dim);
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int i = 0; i < dim; ++i) o[i] = (xr[i] * scale) * weight[i];
  }
}

void rope(float* x, const int32_t* positions, int n_tokens, int n_heads, int head_dim, const RopeParams& p) {
  const int half = head_dim / 2;
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(head_dim));
  std::vector<float> c(half), s(half);
  for (int t = 0; t < n_tokens; ++t) {
    // ggml_rope_cache_init + rope_yarn (ext_factor 0, mscale 1).
    float theta = static_cast<float>(positions[t]);
    for (int i = 0; i < half; ++i) {
      const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
      const float th = p.freq_scale * (theta / ff);
      c[i] = std::cos(th);
      s[i] = std::sin(th);
      theta *= theta_scale;
    }
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float x0 = v[i], x1 = v[i + half];
        // rotate_pairs: x0*cos - x1*sin and x0*sin + x1*cos, contracted by g++ into
        // vfmsub231ss / vfmadd132ss (checked against llama.cpp's Qcur/Kcur bit for bit).
        v[i] = std::fma(x0, c[i], -(x1 * s[i]));
        v[i + half] = std::fma(x0, s[i], x1 * c[i]);
      }
    }
  }
}

float expf_poly(float x) {
  // ggml_v_expf, AVX-512 variant: exp(x) = 2^n * j(b), n = round(x / ln 2), b the remainder in
  // two parts (Cody-Waite), j a degree-5 polynomial; |n| > 192 saturates to 0 or inf.
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                    std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, std::fma(0x1.ffffecp-1f, b, 1.0f));
  if (std::fabs(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
  return std::ldexp(j, static_cast<int>(n));  // _mm512_scalef_ps(j, n)
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  // ggml_vec_swiglu_f32: ggml_v_silu(x) * g, silu = x / (1 + exp(0 - x)).
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = (g / (1.0f + expf_poly(0.0f - g))) * up[i];
  }
}

void kv_write_f16(const float* k, const float* v, const int32_t* slots, int n_tokens, const KvLayout& layout,
                  float* k_cache, float* v_cache) {
  const int64_t row = static_cast<int64_t>(layout.n_kv_heads) * layout.head_dim;
  for (int t = 0; t < n_tokens; ++t)
    for (int64_t i = 0; i < row; ++i) {
      k_cache[slots[t] * row + i] = round_f16(k[t * row + i]);
      v_cache[slots[t] * row + i] = round_f16(v[t * row + i]);
    }
}

namespace {

// ggml_vec_dot_f16 with AVX-512 (no FP16 arithmetic): 4 accumulators of 16 lanes over steps of
// 64 elements, FMA per element (products of f16 values are exact in f32); then sum[0] += sum[2],
// sum[1] += sum[3], sum[0] += sum[1], g++'s _mm512_reduce_add_ps tree, and the elements past
// the last whole step added in double. `ord[e]`: where ggml's element e lives in nibble's row.
float dot_f16(const float* k, const float* q, const int* ord, int n) {
  float sum[4][16] = {};
  const int np = n & ~63;
  for (int i = 0; i < np; i += 64)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 16; ++l) {
        const int e = ord[i + 16 * j + l];
        sum[j][l] = std::fma(k[e], q[e], sum[j][l]);
      }
  float a[16];
  for (int l = 0; l < 16; ++l) a[l] = (sum[0][l] + sum[2][l]) + (sum[1][l] + sum[3][l]);
  float t8[8], t4[4];
  for (int i = 0; i < 8; ++i) t8[i] = a[i + 8] + a[i];
  for (int i = 0; i < 4; ++i) t4[i] = t8[i + 4] + t8[i];
  double s = (t4[0] + t4[2]) + (t4[1] + t4[3]);
  for (int i = np; i < n; ++i) s += static_cast<double>(k[ord[i]] * q[ord[i]]);
  return static_cast<float>(s);
}

}  // namespace

void paged_attention(const float* q, const int32_t* positions, std::span<const AttnSeq> seqs, const float* k_cache,
                     const float* v_cache, const KvLayout& layout, const AttnParams& p, bool interleaved, float* out) {
  const int hd = layout.head_dim;
  const int half = hd / 2;
  const int n_kv = layout.n_kv_heads;
  const int group = p.n_heads / n_kv;
  const int bs = layout.block_size;
  const int64_t token_stride = static_cast<int64_t>(n_kv) * hd;
  // ggml element e of a Q/K row: for the llama architecture the GGUF row order (rotary pairs
  // adjacent), i.e. nibble's element (e % 2) * half + e / 2.
  std::vector<int> ord(hd);
  for (int e = 0; e < hd; ++e) ord[e] = interleaved ? (e % 2) * half + e / 2 : e;
  // With a softcap ggml divides the scale by it first, then s = cap * tanhf(s * scale).
  const float scale = p.softcap > 0 ? p.scale / p.softcap : p.scale;

  const std::vector<AttnRow> items = attention_rows(seqs);
  const int64_t n_items = static_cast<int64_t>(items.size()) * p.n_heads;

#pragma omp parallel
  {
    std::vector<float> q16(hd), acc(hd);
#pragma omp for schedule(dynamic, 4)
    for (int64_t it = 0; it < n_items; ++it) {
      const AttnRow& item = items[it / p.n_heads];
      const int h = static_cast<int>(it % p.n_heads);
      const int kvh = h / group;
      const int pos = positions[item.t];
      const int first = p.window > 0 ? std::max(0, pos - p.window + 1) : 0;
      const float* qv = q + (static_cast<int64_t>(item.t) * p.n_heads + h) * hd;
      for (int d = 0; d < hd; ++d) q16[d] = round_f16(qv[d]);
      std::fill(acc.begin(), acc.end(), 0.0f);  // VKQ16: f16 values
      float S = 0.0f, M = -INFINITY;
      for (int kp = first; kp <= pos; ++kp) {
        const int64_t slot = static_cast<int64_t>(item.seq->block_table[kp / bs]) * bs + kp % bs;
        const float* kv = k_cache + slot * token_stride + static_cast<int64_t>(kvh) * hd;
        const float* vv = v_cache + slot * token_stride + static_cast<int64_t>(kvh) * hd;
        float s = dot_f16(kv, q16.data(), ord.data(), hd) * scale;
        if (p.softcap > 0) s = p.softcap * std::tanh(s);
        s += 0.0f;  // the mask (0 for visible keys)
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
          const float m_old = M;
          M = s;
          ms = std::exp(m_old - M);
          for (int d = 0; d < hd; ++d) acc[d] = round_f16(acc[d] * ms);  // ggml_vec_scale_f16
        } else {
          vs = std::exp(s - M);
        }
        for (int d = 0; d < hd; ++d) acc[d] = round_f16(std::fma(vv[d], vs, acc[d]));  // ggml_vec_mad_f16
        S = std::fma(S, ms, vs);
      }
      float* o = out + (static_cast<int64_t>(item.t) * p.n_heads + h) * hd;
      const float s_inv = S == 0.0f ? 0.0f : 1.0f / S;
      for (int d = 0; d < hd; ++d) o[d] = acc[d] * s_inv;
    }
  }
}

}  // namespace nibble::ops::llamacpp

// Per-token ops of the CPU backend: embedding, RMSNorm, RoPE, gated activations, softcap.
#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "ops/ops.h"

namespace nibble::ops {

void load_row(const WeightView& w, int64_t r, float* out) {
  const int64_t n = w.cols;
  if (w.quant) {
    w.quant->dequant_row(r, out);
    return;
  }
  switch (w.dtype) {
    case DType::kF32:
      std::memcpy(out, static_cast<const float*>(w.data) + r * n, n * sizeof(float));
      break;
    case DType::kBF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + r * n;
      int64_t i = 0;
#if defined(__AVX2__)
      // 8 at a time: zero-extend to 32 bits and shift into the high half.
      for (; i + 8 <= n; i += 8) {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_slli_epi32(wide, 16));
      }
#endif
      for (; i < n; ++i) out[i] = bf16_to_f32(src[i]);
      break;
    }
    case DType::kF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + r * n;
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(src[i]);
      break;
    }
    default:
      // Binding (io/tensor_source get_checked) admits only the three types above.
      std::abort();
  }
}

void embedding(const WeightView& table, const int32_t* tokens, int n, float scale, float* out) {
  const int64_t d = table.cols;
#pragma omp parallel for schedule(static) if (n > 1)
  for (int t = 0; t < n; ++t) {
    float* o = out + t * d;
    load_row(table, tokens[t], o);
    if (scale != 1.0f)
      for (int64_t i = 0; i < d; ++i) o[i] *= scale;
  }
}

void rmsnorm(const float* x, const WeightView& w, int n, int dim, float eps, bool add_one, float* out) {
  std::vector<float> weight(dim);
  load_row(w, 0, weight.data());
  if (add_one)
    for (auto& v : weight) v += 1.0f;
#pragma omp parallel for schedule(static) if (n > 8)
  for (int t = 0; t < n; ++t) {
    const float* xr = x + static_cast<int64_t>(t) * dim;
    float* o = out + static_cast<int64_t>(t) * dim;
    double ss = 0;  // double: the oracle should not lose bits on long rows
    for (int i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    for (int i = 0; i < dim; ++i) o[i] = weight[i] * (xr[i] * inv);
  }
}

void rope(float* x, const int32_t* positions, int n_tokens, int n_heads, int head_dim,
          const float* inv_freq) {
  const int half = head_dim / 2;
#pragma omp parallel for schedule(static) if (n_tokens > 8)
  for (int t = 0; t < n_tokens; ++t) {
    std::vector<float> c(half), s(half);
    for (int i = 0; i < half; ++i) {
      // fp32 angle, as transformers computes it (inv_freq[i] * pos in float).
      const float a = inv_freq[i] * static_cast<float>(positions[t]);
      c[i] = std::cos(a);
      s[i] = std::sin(a);
    }
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void gelu_tanh_mul(const float* gate, const float* up, int64_t n, float* out) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float inner = kSqrt2OverPi * (g + 0.044715f * g * g * g);
    out[i] = 0.5f * g * (1.0f + std::tanh(inner)) * up[i];
  }
}

void softcap(float* x, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

}  // namespace nibble::ops

// qkv_post (qkv_post.h): one warp per (token, head) — q, k and v heads alike — so a decode step
// spreads over n_heads + 2 n_kv_heads warps instead of one block per token (at one token that
// single block was a latency chain). Lane l holds the rotate-half pairs (d, d + head_dim/2) for
// d = l, l + 32, ...; a head's RMSNorm is one warp reduction. The constants (bias, norm weights,
// RoPE frequencies) are read before waiting on the previous kernel (PDL).
#include "model/cuda/qkv_post.h"

#include "ops/cuda/common.cuh"

namespace nibble::cuda {
namespace {

constexpr int kHeadsPerBlock = 4, kMaxPairs = 4;  // head_dim <= 256

__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

__global__ void __launch_bounds__(32 * kHeadsPerBlock) qkv_post_kernel(const uint16_t* __restrict__ qkv,
                                                                       const int32_t* positions, const int32_t* slots,
                                                                       QkvPostParams p, uint16_t* q_out,
                                                                       uint16_t* k_cache, uint16_t* v_cache) {
  const int t = blockIdx.x, lane = threadIdx.x & 31;
  const int h = blockIdx.y * kHeadsPerBlock + (threadIdx.x >> 5);
  const int hd = p.head_dim, half = hd / 2;
  const int qd = p.n_heads * hd, kvd = p.n_kv_heads * hd, width = qd + 2 * kvd;
  const bool valid = h < p.n_heads + 2 * p.n_kv_heads;
  const bool is_q = h < p.n_heads, is_v = h >= p.n_heads + p.n_kv_heads;
  // Constants first: they do not depend on the previous kernel.
  float b0[kMaxPairs], b1[kMaxPairs], w0[kMaxPairs], w1[kMaxPairs], freq[kMaxPairs];
#pragma unroll
  for (int i = 0; i < kMaxPairs; ++i) {
    const int d = lane + 32 * i;
    b0[i] = b1[i] = 0.0f;
    w0[i] = w1[i] = 1.0f;
    freq[i] = 0.0f;
    if (!valid || d >= half) continue;
    if (p.bias) {
      b0[i] = p.bias[h * hd + d];
      b1[i] = p.bias[h * hd + d + half];
    }
    if (p.q_norm && !is_v) {
      const uint16_t* w = is_q ? p.q_norm : p.k_norm;
      w0[i] = bf16_bits_to_f32(w[d]) + (p.norm_adds_one ? 1.0f : 0.0f);
      w1[i] = bf16_bits_to_f32(w[d + half]) + (p.norm_adds_one ? 1.0f : 0.0f);
    }
    freq[i] = p.inv_freq[d];
  }
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  if (!valid) return;
  const uint16_t* in = qkv + static_cast<size_t>(t) * width + h * hd;
  float x0[kMaxPairs], x1[kMaxPairs];
#pragma unroll
  for (int i = 0; i < kMaxPairs; ++i) {
    const int d = lane + 32 * i;
    x0[i] = x1[i] = 0.0f;
    if (d < half) {
      x0[i] = bf16_bits_to_f32(in[d]);
      x1[i] = bf16_bits_to_f32(in[d + half]);
    }
  }
  if (p.bias) {
#pragma unroll
    for (int i = 0; i < kMaxPairs; ++i) {
      x0[i] = round_bf16(x0[i] + b0[i]);
      x1[i] = round_bf16(x1[i] + b1[i]);
    }
  }
  const size_t slot = static_cast<size_t>(slots[t]) * kvd;
  if (is_v) {
    uint16_t* o = v_cache + slot + (h - p.n_heads - p.n_kv_heads) * hd;
#pragma unroll
    for (int i = 0; i < kMaxPairs; ++i) {
      const int d = lane + 32 * i;
      if (d < half) {
        o[d] = __bfloat16_as_ushort(__float2bfloat16_rn(x0[i]));
        o[d + half] = __bfloat16_as_ushort(__float2bfloat16_rn(x1[i]));
      }
    }
    return;
  }
  if (p.q_norm) {
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxPairs; ++i) ss = fmaf(x0[i], x0[i], fmaf(x1[i], x1[i], ss));
    const float inv = rsqrtf(warp_sum(ss) / hd + p.eps);
#pragma unroll
    for (int i = 0; i < kMaxPairs; ++i) {
      x0[i] = round_bf16(w0[i] * (x0[i] * inv));
      x1[i] = round_bf16(w1[i] * (x1[i] * inv));
    }
  }
  const float pos = static_cast<float>(positions[t]);
  uint16_t* o = is_q ? q_out + static_cast<size_t>(t) * qd + h * hd : k_cache + slot + (h - p.n_heads) * hd;
#pragma unroll
  for (int i = 0; i < kMaxPairs; ++i) {
    const int d = lane + 32 * i;
    if (d >= half) continue;
    float sn, cs;
    sincosf(freq[i] * pos, &sn, &cs);
    o[d] = __bfloat16_as_ushort(__float2bfloat16_rn(x0[i] * cs - x1[i] * sn));
    o[d + half] = __bfloat16_as_ushort(__float2bfloat16_rn(x1[i] * cs + x0[i] * sn));
  }
}

}  // namespace

Status qkv_post(const uint16_t* qkv, int T, const int32_t* positions, const int32_t* slots, const QkvPostParams& p,
                uint16_t* q_out, uint16_t* k_cache, uint16_t* v_cache, Stream& s) {
  if (p.head_dim <= 0 || p.head_dim % 2 || p.head_dim > 64 * kMaxPairs)
    return Status::unsupported("qkv_post: head_dim must be even and at most {}, got {}", 64 * kMaxPairs, p.head_dim);
  if (T == 0) return Status::ok();
  const int heads = p.n_heads + 2 * p.n_kv_heads;
  return launch_pdl("qkv_post", qkv_post_kernel, dim3(T, ceil_div(heads, kHeadsPerBlock)), dim3(32 * kHeadsPerBlock),
                    0, s, qkv, positions, slots, p, q_out, k_cache, v_cache);
}

}  // namespace nibble::cuda

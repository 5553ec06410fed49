// Paged decode attention with GQA: block (token, kv head, chunk of up to 4 query heads sharing
// that kv head). Its 4 warps take the keys round-robin; each lane holds head_dim / 32 dims of q,
// of the running output and of each key/value row; softmax is online (running max and sum) per
// warp, and the warps' partial states merge through shared memory at the end.
// Correctness first: one key per warp step, a warp-wide dot product per head.
#include "ops/cuda/common.cuh"
#include "ops/cuda/elementwise.h"

namespace nibble::cuda {
namespace {

constexpr int kWarps = 4, kHeadsPerBlock = 4, kMaxDimsPerLane = 8;  // head_dim <= 256

template <typename T>
__device__ float cache_at(const T* p, size_t i);
template <>
__device__ float cache_at<float>(const float* p, size_t i) { return p[i]; }
template <>
__device__ float cache_at<uint16_t>(const uint16_t* p, size_t i) { return bf16_bits_to_f32(p[i]); }

template <typename T, int DPL>
__global__ void __launch_bounds__(kWarps * 32) decode_attn_kernel(const uint16_t* q, const int32_t* positions,
                                                                   const int32_t* token_seq, const int32_t* block_tables,
                                                                   const T* kc, const T* vc, DecodeAttnParams p,
                                                                   uint16_t* out) {
  const int t = blockIdx.x, kvh = blockIdx.y;
  const int group = p.n_heads / p.n_kv_heads;
  const int h0 = kvh * group + blockIdx.z * kHeadsPerBlock;
  const int nh = min(kHeadsPerBlock, group - static_cast<int>(blockIdx.z) * kHeadsPerBlock);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int hd = p.head_dim;
  const int pos = positions[t];
  const int first = p.window > 0 ? max(0, pos - p.window + 1) : 0;
  const int32_t* bt = block_tables + static_cast<size_t>(token_seq[t]) * p.max_blocks;

  float qv[kHeadsPerBlock][DPL], acc[kHeadsPerBlock][DPL], mx[kHeadsPerBlock], sum[kHeadsPerBlock];
#pragma unroll
  for (int hh = 0; hh < kHeadsPerBlock; ++hh) {
    mx[hh] = -INFINITY;
    sum[hh] = 0.0f;
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      acc[hh][i] = 0.0f;
      qv[hh][i] = hh < nh ? bf16_bits_to_f32(q[(static_cast<size_t>(t) * p.n_heads + h0 + hh) * hd + lane + 32 * i]) : 0.0f;
    }
  }
  for (int j = first + warp; j <= pos; j += kWarps) {
    const size_t slot = static_cast<size_t>(bt[j / p.block_size]) * p.block_size + j % p.block_size;
    const size_t base = (slot * p.n_kv_heads + kvh) * hd;
    float kv[DPL], vv[DPL];
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      kv[i] = cache_at(kc, base + lane + 32 * i);
      vv[i] = cache_at(vc, base + lane + 32 * i);
    }
#pragma unroll
    for (int hh = 0; hh < kHeadsPerBlock; ++hh) {
      if (hh >= nh) break;
      float s = 0.0f;
#pragma unroll
      for (int i = 0; i < DPL; ++i) s = fmaf(qv[hh][i], kv[i], s);
      s = warp_sum(s) * p.scale;
      if (p.softcap > 0) s = p.softcap * tanhf(s / p.softcap);
      const float m_new = fmaxf(mx[hh], s);
      const float corr = expf(mx[hh] - m_new), e = expf(s - m_new);
      sum[hh] = sum[hh] * corr + e;
#pragma unroll
      for (int i = 0; i < DPL; ++i) acc[hh][i] = fmaf(acc[hh][i], corr, e * vv[i]);
      mx[hh] = m_new;
    }
  }

  __shared__ float s_mx[kWarps][kHeadsPerBlock], s_sum[kWarps][kHeadsPerBlock];
  __shared__ float s_acc[kWarps][kHeadsPerBlock][kMaxDimsPerLane * 32];
#pragma unroll
  for (int hh = 0; hh < kHeadsPerBlock; ++hh) {
    if (lane == 0) {
      s_mx[warp][hh] = mx[hh];
      s_sum[warp][hh] = sum[hh];
    }
#pragma unroll
    for (int i = 0; i < DPL; ++i) s_acc[warp][hh][lane + 32 * i] = acc[hh][i];
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < nh * hd; idx += kWarps * 32) {
    const int hh = idx / hd, d = idx % hd;
    float m_all = -INFINITY;
    for (int w = 0; w < kWarps; ++w) m_all = fmaxf(m_all, s_mx[w][hh]);
    float l = 0.0f, o = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      if (s_mx[w][hh] == -INFINITY) continue;  // this warp saw no key
      const float c = expf(s_mx[w][hh] - m_all);
      l += s_sum[w][hh] * c;
      o += s_acc[w][hh][d] * c;
    }
    out[(static_cast<size_t>(t) * p.n_heads + h0 + hh) * hd + d] = __bfloat16_as_ushort(__float2bfloat16_rn(o / l));
  }
}

template <typename T>
Status launch_attn(const uint16_t* q, const int32_t* positions, const int32_t* token_seq, const int32_t* block_tables,
                   const void* kc, const void* vc, int n_tokens, const DecodeAttnParams& p, uint16_t* out, Stream& s) {
  const int group = p.n_heads / p.n_kv_heads;
  const dim3 grid(n_tokens, p.n_kv_heads, ceil_div(group, kHeadsPerBlock));
  const T* k = static_cast<const T*>(kc);
  const T* v = static_cast<const T*>(vc);
  switch (p.head_dim / 32) {  // dims per lane: a compile-time register array size
    case 2: return launch("paged_decode_attention", decode_attn_kernel<T, 2>, grid, dim3(kWarps * 32), 0, s.get(), q, positions, token_seq, block_tables, k, v, p, out);
    case 4: return launch("paged_decode_attention", decode_attn_kernel<T, 4>, grid, dim3(kWarps * 32), 0, s.get(), q, positions, token_seq, block_tables, k, v, p, out);
    case 8: return launch("paged_decode_attention", decode_attn_kernel<T, 8>, grid, dim3(kWarps * 32), 0, s.get(), q, positions, token_seq, block_tables, k, v, p, out);
    default: return Status::unsupported("paged_decode_attention: head_dim must be 64, 128 or 256, got {}", p.head_dim);
  }
}

}  // namespace

Status paged_decode_attention(const uint16_t* q, const int32_t* positions, const int32_t* token_seq,
                              const int32_t* block_tables, const void* k_cache, const void* v_cache, int n_tokens,
                              const DecodeAttnParams& p, uint16_t* out, Stream& s) {
  if (p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0)
    return Status::invalid("paged_decode_attention: n_heads {} is not a multiple of n_kv_heads {}", p.n_heads, p.n_kv_heads);
  if (p.cache == CacheType::kF32)
    return launch_attn<float>(q, positions, token_seq, block_tables, k_cache, v_cache, n_tokens, p, out, s);
  return launch_attn<uint16_t>(q, positions, token_seq, block_tables, k_cache, v_cache, n_tokens, p, out, s);
}

}  // namespace nibble::cuda

// qkv_post (qkv_post.h): one block per token, the token's q|k|v row staged in shared memory as
// fp32 (each value already rounded to bf16, as the separate ops store it between steps).
#include "model/cuda/qkv_post.h"

#include "ops/cuda/common.cuh"

namespace nibble::cuda {
namespace {

constexpr int kThreads = 256, kChunks = 4;

__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

__global__ void __launch_bounds__(kThreads) qkv_post_kernel(const uint16_t* __restrict__ qkv, const int32_t* positions,
                                                            const int32_t* slots, QkvPostParams p, uint16_t* q_out,
                                                            uint16_t* k_cache, uint16_t* v_cache) {
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  extern __shared__ float row[];  // [q_dim + 2 kv_dim]
  const int t = blockIdx.x, hd = p.head_dim, half = hd / 2;
  const int qd = p.n_heads * hd, kvd = p.n_kv_heads * hd, width = qd + 2 * kvd;
  const uint16_t* in = qkv + static_cast<size_t>(t) * width;
  // Every 16-byte load of the row issued before the first use (at one token this kernel is all
  // latency): up to kChunks per thread, the rest (wider rows) in a second round.
  const int width8 = width / 8;
  for (int base = 0; base < width8; base += kThreads * kChunks) {
    uint4 v[kChunks];
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const int c = base + threadIdx.x + j * kThreads;
      if (c < width8) v[j] = reinterpret_cast<const uint4*>(in)[c];
    }
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const int c = base + threadIdx.x + j * kThreads;
      if (c >= width8) continue;
      const uint32_t w[4] = {v[j].x, v[j].y, v[j].z, v[j].w};
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        float x = __uint_as_float(e & 1 ? w[e / 2] & 0xFFFF0000u : w[e / 2] << 16);
        if (p.bias) x = round_bf16(x + p.bias[8 * c + e]);
        row[8 * c + e] = x;
      }
    }
  }
  __syncthreads();
  if (p.q_norm) {  // RMSNorm of each q and k head: one warp per head
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int h = warp; h < p.n_heads + p.n_kv_heads; h += kThreads / 32) {
      float* v = row + h * hd;
      float ss = 0;
      for (int d = lane; d < hd; d += 32) ss = fmaf(v[d], v[d], ss);
      ss = warp_sum(ss);
      const float inv = rsqrtf(ss / hd + p.eps);
      const uint16_t* w = h < p.n_heads ? p.q_norm : p.k_norm;
      for (int d = lane; d < hd; d += 32) {
        float wv = bf16_bits_to_f32(w[d]);
        if (p.norm_adds_one) wv += 1.0f;
        v[d] = round_bf16(wv * (v[d] * inv));
      }
    }
    __syncthreads();
  }
  const float pos = static_cast<float>(positions[t]);
  const size_t slot = static_cast<size_t>(slots[t]) * kvd;
  // RoPE on every (q or k head, pair), written straight to its destination.
  for (int i = threadIdx.x; i < (p.n_heads + p.n_kv_heads) * half; i += kThreads) {
    const int h = i / half, d = i % half;
    const float* v = row + h * hd;
    float sn, cs;
    sincosf(p.inv_freq[d] * pos, &sn, &cs);
    const float x0 = v[d], x1 = v[d + half];
    const uint16_t y0 = __bfloat16_as_ushort(__float2bfloat16_rn(x0 * cs - x1 * sn));
    const uint16_t y1 = __bfloat16_as_ushort(__float2bfloat16_rn(x1 * cs + x0 * sn));
    if (h < p.n_heads) {
      uint16_t* o = q_out + static_cast<size_t>(t) * qd + h * hd;
      o[d] = y0;
      o[d + half] = y1;
    } else {
      uint16_t* o = k_cache + slot + (h - p.n_heads) * hd;
      o[d] = y0;
      o[d + half] = y1;
    }
  }
  for (int i = threadIdx.x; i < kvd; i += kThreads)
    v_cache[slot + i] = __bfloat16_as_ushort(__float2bfloat16_rn(row[qd + kvd + i]));
}

}  // namespace

Status qkv_post(const uint16_t* qkv, int T, const int32_t* positions, const int32_t* slots, const QkvPostParams& p,
                uint16_t* q_out, uint16_t* k_cache, uint16_t* v_cache, Stream& s) {
  if (p.head_dim <= 0 || p.head_dim % 2) return Status::unsupported("qkv_post: head_dim must be even, got {}", p.head_dim);
  if (T == 0) return Status::ok();
  // Rows of 16-byte chunks: head_dim a multiple of 8 and 16-byte aligned rows (the engine's buffers).
  if (p.head_dim % 8 || reinterpret_cast<uintptr_t>(qkv) % 16)
    return Status::unsupported("qkv_post: head_dim must be a multiple of 8 and qkv 16-byte aligned");
  const size_t smem = static_cast<size_t>(p.n_heads + 2 * p.n_kv_heads) * p.head_dim * sizeof(float);
  if (smem > 48 * 1024) {
    // Above the default limit: opt in once (up to 227 KB on Hopper, 163 KB on A100).
    static bool raised = false;
    if (!raised) {
      NB_CUDA_TRY(cudaFuncSetAttribute(qkv_post_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 160 * 1024));
      raised = true;
    }
  }
  return launch_pdl("qkv_post", qkv_post_kernel, dim3(T), dim3(kThreads), smem, s, qkv, positions, slots, p, q_out,
                k_cache, v_cache);
}

}  // namespace nibble::cuda

// Paged decode attention with GQA (one query row per token). Two paths:
// - bf16 cache (the engine's): split-K over the context on the tensor cores, below
//   (decode_mma_kernel), head_dim any multiple of 8 up to 256;
// - fp32 cache (tests, CPU-twin layouts): block (token, kv head, chunk of up to 4 query heads
//   sharing that kv head). Its 4 warps take the keys round-robin; each lane holds head_dim / 32
//   dims of q, of the running output and of each key/value row; softmax is online (running max
//   and sum) per warp, and the warps' partial states merge through shared memory at the end.
//   Correctness first: one key per warp step, a warp-wide dot product per head.
#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "ops/cuda/attention_tile.cuh"
#include "ops/cuda/cluster.cuh"
#include "ops/cuda/common.cuh"
#include "ops/cuda/elementwise.h"

namespace nibble::cuda {
namespace {

constexpr int kWarps = 4, kHeadsPerBlock = 4, kMaxDimsPerLane = 8;  // head_dim <= 256

template <typename T>
__device__ float cache_at(const T* p, size_t i);
template <>
__device__ float cache_at<float>(const float* p, size_t i) { return p[i]; }

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

// ---- bf16 cache: split-K over the context (flash-decoding) on the tensor cores -----------------
// Block (split, kv head x chunk of up to 16 query heads, token). The heads of the GQA group are
// the 16 rows of one mma.m16n8k16 A tile (zero rows beyond the group), so each key and value is
// read once for the whole group. The token's keys [first, pos] are cut into n_splits equal runs;
// a block streams its run 64 keys at a time through a double-buffered cp.async ring (16-byte
// copies), each warp taking 16 keys of a tile with its own online softmax; the 4 warps merge in
// shared memory, and with more than one split the block writes (o, m, l) partials to the stream's
// scratch and the last block of the token's group to arrive merges them in split order (an
// atomic counter that it resets), so the result does not depend on timing.
//
// With CL > 1 (sm_90, few heads, short contexts: launch_decode_mma) the CL splits of a head are one
// thread-block cluster of 8-warp blocks (128-key tiles, single-buffered) and they merge through
// distributed shared memory instead: no partials in global memory, no fence, no counter, no last
// block.
constexpr int kMaxSplits = 64;

// Shared memory of a block: Q, then `stages` tiles of K and V (the cluster path single-buffers its
// 128-key tiles so that a block takes 74 KB, as the 4-warp kernel's two 64-key stages do).
template <int WARPS>
constexpr int decode_stages() { return WARPS > 4 ? 1 : 2; }
template <int WARPS>
size_t decode_mma_smem(int head_dim) {
  const int dp = (head_dim + 15) & ~15;
  const size_t ring = static_cast<size_t>(16 + 2 * decode_stages<WARPS>() * 16 * WARPS) * (2 * dp + 16);
  const size_t merge = static_cast<size_t>(16) * (2 * dp + 16) + WARPS * 16 * head_dim * sizeof(float);
  return ring > merge ? ring : merge;
}

template <int DMAX, int WARPS, int CL>
__global__ void __launch_bounds__(WARPS * 32) decode_mma_kernel(const uint16_t* __restrict__ q,
                                                                 const int32_t* __restrict__ positions,
                                                                 const int32_t* __restrict__ token_seq,
                                                                 const int32_t* __restrict__ block_tables,
                                                                 const uint16_t* __restrict__ kc,
                                                                 const uint16_t* __restrict__ vc, DecodeAttnParams p,
                                                                 int n_splits, float* ws, int* counters,
                                                                 uint16_t* __restrict__ out) {
  constexpr int kDecThreads = WARPS * 32, kDecBN = 16 * WARPS;  // a warp takes 16 keys of a tile
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  extern __shared__ uint4 smem[];
  __shared__ float s_m[WARPS][16], s_l[WARPS][16];
  __shared__ int s_last;
  const int split = blockIdx.x, tok = blockIdx.z;
  const int group = p.n_heads / p.n_kv_heads, hchunks = (group + 15) / 16;
  const int kvh = blockIdx.y / hchunks, hc = blockIdx.y - kvh * hchunks;
  const int h0 = kvh * group + hc * 16, nh = min(16, group - hc * 16);
  const int D = p.head_dim, Dp = (D + 15) & ~15, cpr = D / 8, stride = 2 * Dp + 16;
  const int pos = positions[tok];
  const int first = p.window > 0 ? max(0, pos - p.window + 1) : 0;
  const int chunk = ((pos - first + n_splits) / n_splits + kDecBN - 1) / kDecBN * kDecBN;
  // The splits this token uses: n_splits is sized for the longest context the block tables hold,
  // a short context fills only the first few. The others leave at once, and the merge below reads
  // only these (before, the last block re-read all n_splits partials, one L2 round trip a split:
  // Llama-3-8B decode at batch 1 went from 401 to 406-410 tok/s with this).
  const int n_used = min(n_splits, (pos - first + chunk) / chunk);
  if (CL == 1 && split >= n_used) return;  // a cluster's idle blocks still take part in its merge
  const int k_lo = first + split * chunk, k_hi = min(pos, k_lo + chunk - 1);
  constexpr int kStages = decode_stages<WARPS>();
  const uint32_t sQ = smem_addr(smem), sK = sQ + 16 * stride, sV = sK + kStages * kDecBN * stride;
  const int32_t* bt = block_tables + static_cast<size_t>(token_seq[tok]) * p.max_blocks;
  const uint64_t pol = evict_first_policy();  // each key is read once per step

  if (Dp != D)
    for (int r = threadIdx.x; r < 16 + 2 * kStages * kDecBN; r += kDecThreads) sts_zero16(sQ + r * stride + 2 * D);
  for (int c = threadIdx.x; c < 16 * cpr; c += kDecThreads) {
    const int r = c / cpr, ch = c - r * cpr;
    if (r < nh) cp_async16(sQ + r * stride + ch * 16, q + (static_cast<size_t>(tok) * p.n_heads + h0 + r) * D + ch * 8, pol);
    else sts_zero16(sQ + r * stride + ch * 16);
  }
  const PagedKvTile<kDecThreads> tile(kc, vc, bt, p.block_size, p.n_kv_heads, kvh, D, stride, pol);
  auto load_kv = [&](int kt, int buf) {
    tile.load(k_lo + kt * kDecBN, kDecBN, k_hi, sK + buf * kDecBN * stride, sV + buf * kDecBN * stride);
  };
  const int n_kt = split < n_used && k_hi >= k_lo ? (k_hi - k_lo + kDecBN) / kDecBN : 0;
  if (n_kt > 0) load_kv(0, 0);
  cp_async_commit();

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const float scale = p.scale, cap = p.softcap, inv_cap = p.softcap > 0 ? 1.0f / p.softcap : 0.0f;
  float o[DMAX / 8][4];
#pragma unroll
  for (int i = 0; i < DMAX / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const uint32_t q_addr = sQ + (lane & 15) * stride + (lane >> 4) * 16;
  const uint32_t k_off = (warp * 16 + (lane & 7) + 8 * (lane >> 4)) * stride + ((lane >> 3) & 1) * 16;
  const uint32_t v_off = (warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * stride + (lane >> 4) * 16;

  for (int kt = 0; kt < n_kt; ++kt) {
    if (kStages == 2 && kt + 1 < n_kt) {
      load_kv(kt + 1, (kt + 1) & 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int buf = kStages == 2 ? kt & 1 : 0, j0 = k_lo + kt * kDecBN + warp * 16;
    const uint32_t kb = sK + buf * kDecBN * stride + k_off, vb = sV + buf * kDecBN * stride + v_off;
    float sc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
    for (int kk = 0; kk < DMAX / 16; ++kk) {
      if (kk * 16 >= Dp) break;
      uint32_t a[4], b[4];
      ldsm_x4(a, q_addr + kk * 32);
      ldsm_x4(b, kb + kk * 32);
      mma_bf16_16816(sc[0], a, b[0], b[1]);
      mma_bf16_16816(sc[1], a, b[2], b[3]);
    }
    const bool inside = j0 + 15 <= k_hi;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float v = sc[nt][e] * scale;
        if (cap > 0) v = cap * tanhf(v * inv_cap);
        v *= kLog2e;
        if (!inside && j0 + nt * 8 + 2 * t4 + (e & 1) > k_hi) v = -INFINITY;
        sc[nt][e] = v;
      }
    float base[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float mx = fmaxf(m[i], fmaxf(fmaxf(sc[0][2 * i], sc[0][2 * i + 1]), fmaxf(sc[1][2 * i], sc[1][2 * i + 1])));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      base[i] = mx == -INFINITY ? 0.0f : mx;
      const float corr = exp2f(m[i] - base[i]);
      m[i] = mx;
      l[i] *= corr;
#pragma unroll
      for (int nt = 0; nt < DMAX / 8; ++nt) {
        o[nt][2 * i] *= corr;
        o[nt][2 * i + 1] *= corr;
      }
    }
    uint32_t pa[4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      const float p0 = exp2f(sc[nt][0] - base[0]), p1 = exp2f(sc[nt][1] - base[0]);
      const float p2 = exp2f(sc[nt][2] - base[1]), p3 = exp2f(sc[nt][3] - base[1]);
      l[0] += p0 + p1;
      l[1] += p2 + p3;
      pa[nt * 2] = pack_bf16x2(p0, p1);
      pa[nt * 2 + 1] = pack_bf16x2(p2, p3);
    }
#pragma unroll
    for (int dp = 0; dp < DMAX / 16; ++dp) {
      if (dp * 16 >= D) break;
      uint32_t b[4];
      ldsm_x4_trans(b, vb + dp * 32);
      mma_bf16_16816(o[2 * dp], pa, b[0], b[1]);
      if (dp * 16 + 8 < D) mma_bf16_16816(o[2 * dp + 1], pa, b[2], b[3]);
    }
    __syncthreads();
    if (kStages == 1 && kt + 1 < n_kt) {  // one buffer: the next tile once this one is used
      load_kv(kt + 1, 0);
      cp_async_commit();
    }
  }
  cp_async_wait<0>();
  __syncthreads();

  // Merge the warps (shared memory after Q is free now).
  float* s_o = reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(smem) + 16 * stride);  // [WARPS][16][D]
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    const int r = g + 8 * i;
    if (t4 == 0) {
      s_m[warp][r] = m[i];
      s_l[warp][r] = l[i];
    }
#pragma unroll
    for (int nt = 0; nt < DMAX / 8; ++nt)
      if (nt * 8 < D) *reinterpret_cast<float2*>(s_o + (warp * 16 + r) * D + nt * 8 + 2 * t4) = make_float2(o[nt][2 * i], o[nt][2 * i + 1]);
  }
  __syncthreads();
  const size_t n_part = static_cast<size_t>(gridDim.z) * p.n_heads * n_splits;
  float* ws_o = ws;                      // [tokens, n_heads, n_splits, D]
  float* ws_m = ws + n_part * D;         // [tokens, n_heads, n_splits]
  float* ws_l = ws_m + n_part;
  // With clusters, each block's partial (o, m, l) of every head row stays in its shared memory.
  struct ClusterPart {
    float o[CL > 1 ? 16 * DMAX : 1], m[16], l[16];
  };
  __shared__ ClusterPart cl_part;
  for (int idx = threadIdx.x; idx < nh * D; idx += kDecThreads) {
    const int r = idx / D, d = idx - r * D;
    float mall = -INFINITY;
    for (int w = 0; w < WARPS; ++w) mall = fmaxf(mall, s_m[w][r]);
    float lsum = 0.0f, osum = 0.0f;
    for (int w = 0; w < WARPS; ++w) {
      if (s_m[w][r] == -INFINITY) continue;  // this warp saw no key
      const float c = exp2f(s_m[w][r] - mall);
      lsum += s_l[w][r] * c;
      osum += s_o[(w * 16 + r) * D + d] * c;
    }
    const size_t row = static_cast<size_t>(tok) * p.n_heads + h0 + r;
    if constexpr (CL > 1) {
      cl_part.o[r * DMAX + d] = osum;
      if (d == 0) {
        cl_part.m[r] = mall;
        cl_part.l[r] = lsum;
      }
    } else if (n_used == 1) {
      out[row * D + d] = __bfloat16_as_ushort(__float2bfloat16_rn(lsum > 0 ? osum / lsum : 0.0f));
    } else {
      const size_t part = row * n_splits + split;
      ws_o[part * D + d] = osum;
      if (d == 0) {
        ws_m[part] = mall;
        ws_l[part] = lsum;
      }
    }
  }
  if constexpr (CL > 1) {
    // The cluster's blocks merge its CL partials, in rank (= split) order, each block a share of
    // the outputs; every remote read is issued before the first is used (one round trip).
    cl_sync<CL>();
    const int rank = cl_rank<CL>();
    for (int idx = rank * kDecThreads + threadIdx.x; idx < nh * D; idx += CL * kDecThreads) {
      const int r = idx / D, d = idx - r * D;
      float pm[CL], pl[CL], po[CL];
#pragma unroll
      for (int c = 0; c < CL; ++c) {
        const ClusterPart* part = cl_at<CL>(&cl_part, c);
        pm[c] = part->m[r];
        pl[c] = part->l[r];
        po[c] = part->o[r * DMAX + d];
      }
      float mall = -INFINITY;
#pragma unroll
      for (int c = 0; c < CL; ++c) mall = fmaxf(mall, pm[c]);
      float lsum = 0.0f, osum = 0.0f;
#pragma unroll
      for (int c = 0; c < CL; ++c) {
        if (pm[c] == -INFINITY) continue;  // an idle block, or no key in its run
        const float w = exp2f(pm[c] - mall);
        lsum += pl[c] * w;
        osum += po[c] * w;
      }
      const size_t row = static_cast<size_t>(tok) * p.n_heads + h0 + r;
      out[row * D + d] = __bfloat16_as_ushort(__float2bfloat16_rn(lsum > 0 ? osum / lsum : 0.0f));
    }
    cl_sync<CL>();  // no block leaves while another still reads its shared memory
    return;
  }
  if (n_used == 1) return;

  // The last split of this (token, kv head, head chunk) to finish merges all of them.
  __threadfence();
  __syncthreads();
  int* counter = counters + (static_cast<size_t>(tok) * gridDim.y + blockIdx.y);
  if (threadIdx.x == 0) s_last = atomicAdd(counter, 1) == n_used - 1;
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  const size_t row0 = static_cast<size_t>(tok) * p.n_heads + h0;
  const int d4n = D / 4;  // D is a multiple of 8
  // One output (4 columns of one head row) a thread and at most kOne splits (batch 1 up to 1,024
  // keys, Llama-3-8B's 4 heads x 128 columns): the thread loads its partials before the weights
  // are known, so the merge's loads are all in flight at once: one L2 round trip, not two.
  constexpr int kOne = 16;
  const bool one_pass = nh * d4n <= kDecThreads && n_used <= kOne;
  float4 part[kOne];
  if (one_pass && threadIdx.x < nh * d4n) {
    const int r = threadIdx.x / d4n, d4 = threadIdx.x - r * d4n;
    const float4* src = reinterpret_cast<const float4*>(ws_o + (row0 + r) * n_splits * D) + d4;
#pragma unroll
    for (int u = 0; u < kOne; ++u)
      if (u < n_used) part[u] = __ldcg(src + static_cast<size_t>(u) * d4n);
  }
  // Weights of every (head, split) once, in shared memory: w = exp2(m_s - m_all) / L. The maxima
  // and the sums come in one L2 round trip.
  float* s_w = reinterpret_cast<float*>(smem);  // [16][n_splits] (n_splits <= kMaxSplits), first n_used used
  float* s_ls = s_w + 16 * n_splits;            // the splits' sums, same layout
  for (int idx = threadIdx.x; idx < nh * n_used; idx += kDecThreads) {
    const int r = idx / n_used, sp = idx - r * n_used;
    const float ms = __ldcg(ws_m + (row0 + r) * n_splits + sp), ls = __ldcg(ws_l + (row0 + r) * n_splits + sp);
    s_w[r * n_splits + sp] = ms;
    s_ls[r * n_splits + sp] = ls;
  }
  __syncthreads();
  for (int r = warp; r < nh; r += WARPS) {  // one warp per head row
    float mall = -INFINITY;
    for (int sp = lane; sp < n_used; sp += 32) mall = fmaxf(mall, s_w[r * n_splits + sp]);
    mall = warp_max(mall);
    float lsum = 0.0f;
    for (int sp = lane; sp < n_used; sp += 32) {
      const float ms = s_w[r * n_splits + sp];
      const float w = ms == -INFINITY ? 0.0f : exp2f(ms - mall);
      lsum += w * s_ls[r * n_splits + sp];
      s_w[r * n_splits + sp] = w;
    }
    lsum = warp_sum(lsum);
    const float inv = lsum > 0 ? 1.0f / lsum : 0.0f;
    __syncwarp();
    for (int sp = lane; sp < n_used; sp += 32) s_w[r * n_splits + sp] *= inv;
  }
  __syncthreads();
  auto write4 = [&](int r, int d4, const float4& acc) {
    uint2 packed;
    packed.x = pack_bf16x2(acc.x, acc.y);
    packed.y = pack_bf16x2(acc.z, acc.w);
    *reinterpret_cast<uint2*>(out + (row0 + r) * D + 4 * d4) = packed;
  };
  auto add = [](float4& acc, float wt, const float4& v) {
    acc.x = fmaf(wt, v.x, acc.x);
    acc.y = fmaf(wt, v.y, acc.y);
    acc.z = fmaf(wt, v.z, acc.z);
    acc.w = fmaf(wt, v.w, acc.w);
  };
  if (one_pass) {
    if (threadIdx.x < nh * d4n) {
      const int r = threadIdx.x / d4n, d4 = threadIdx.x - r * d4n;
      float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
      for (int u = 0; u < kOne; ++u)
        if (u < n_used) add(acc, s_w[r * n_splits + u], part[u]);  // in split order, as below
      write4(r, d4, acc);
    }
  } else {
    // Four output columns a thread (16-byte loads), the splits added in order, kU loads in flight.
    constexpr int kU = 8;
    for (int idx = threadIdx.x; idx < nh * d4n; idx += kDecThreads) {
      const int r = idx / d4n, d4 = idx - r * d4n;
      const float4* src = reinterpret_cast<const float4*>(ws_o + (row0 + r) * n_splits * D) + d4;
      const float* w = s_w + r * n_splits;
      float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      for (int sp = 0; sp < n_used; sp += kU) {
        float4 v[kU];
#pragma unroll
        for (int u = 0; u < kU; ++u)
          if (sp + u < n_used) v[u] = __ldcg(src + static_cast<size_t>(sp + u) * d4n);
#pragma unroll
        for (int u = 0; u < kU; ++u) {
          if (sp + u >= n_used) break;
          add(acc, w[sp + u], v[u]);
        }
      }
      write4(r, d4, acc);
    }
  }
  if (threadIdx.x == 0) *counter = 0;  // left at zero for the next user of the scratch
}

// Splits per token: enough blocks for ~2 per SM (each keeps two 64-key tiles of K and V in flight),
// each split at least 128 keys of the longest context the block tables can hold, at most
// kMaxSplits (the merge's weights sit in shared memory).
int decode_splits(int n_tokens, const DecodeAttnParams& p, const DeviceInfo& info) {
  const int group = p.n_heads / p.n_kv_heads, hchunks = (group + 15) / 16;
  const int base = p.n_kv_heads * hchunks * n_tokens;
  int max_ctx = p.max_blocks * p.block_size;
  if (p.window > 0) max_ctx = std::min(max_ctx, p.window);
  const int target = 2 * std::max(info.sm_count, 1);
  // At least 64 keys a split (one tile): measured end to end on the Llama-3-8B shape at batch 1
  // and ~600 keys, 64 beat 128 by 3 % and 32 (empty tiles) lost 4 %; batch 16 did not move.
  constexpr int kMinKeys = 64;
  return std::max(1, std::min({ceil_div(target, base), ceil_div(max_ctx, kMinKeys), kMaxSplits}));
}

// The cluster path: kClusterSplits splits a head, 8-warp blocks, for contexts up to
// kClusterMaxKeys (two 128-key tiles a block, one after the other).
constexpr int kClusterSplits = 8, kClusterWarps = 8, kClusterMaxKeys = 2048;

// Raised once to the bucket's largest need, so that no call happens under graph capture.
template <int DMAX, int WARPS, int CL>
cudaError_t allow_decode_smem() {
  static const cudaError_t allowed = cudaFuncSetAttribute(decode_mma_kernel<DMAX, WARPS, CL>,
                                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                          static_cast<int>(decode_mma_smem<WARPS>(DMAX)));
  return allowed;
}

// How many clusters of the cluster path run at once (0: none), asked once per bucket.
template <int DMAX>
int decode_active_clusters() {
  static const int n = [] {
    constexpr int kCL = kClusterSplits;
    if (allow_decode_smem<DMAX, kClusterWarps, kCL>() != cudaSuccess) return 0;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(kCL);
    cfg.blockDim = dim3(kClusterWarps * 32);
    cfg.dynamicSmemBytes = decode_mma_smem<kClusterWarps>(DMAX);
    cudaLaunchAttribute attr = cluster_dim_attr(kCL);
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, decode_mma_kernel<DMAX, kClusterWarps, kCL>, &cfg) != cudaSuccess)
      clusters = 0;
    cudaGetLastError();  // a refusal is an answer, not an error for the next call
    return clusters;
  }();
  return n;
}

// How many of the device's co-resident clusters the cluster path would take (> 1: not all at
// once), or 0 where it does not apply: below sm_90, a bucket of more than 128 dims, or the block
// tables' longest context (or the window) beyond kClusterMaxKeys.
template <int DMAX>
double decode_cluster_share(int n_tokens, const DecodeAttnParams& p, const DeviceInfo& info) {
  if constexpr (DMAX > 128) {
    return 0;
  } else {
    if (info.cc_major < 9) return 0;
    int max_ctx = p.max_blocks * p.block_size;
    if (p.window > 0) max_ctx = std::min(max_ctx, p.window);
    const int active = decode_active_clusters<DMAX>();
    if (max_ctx > kClusterMaxKeys || active == 0) return 0;
    const int hchunks = (p.n_heads / p.n_kv_heads + 15) / 16;
    return static_cast<double>(n_tokens) * p.n_kv_heads * hchunks / active;
  }
}

bool cluster_merge_allowed() {
  static const bool allowed = [] {
    const char* e = std::getenv("NIBBLE_ATTN_CLUSTER");
    return !(e && std::string_view(e) == "0");
  }();
  return allowed;
}

template <int DMAX>
Status launch_decode_mma(const uint16_t* q, const int32_t* positions, const int32_t* token_seq,
                         const int32_t* block_tables, const void* kc, const void* vc, int n_tokens,
                         const DecodeAttnParams& p, uint16_t* out, Stream& s) {
  const int group = p.n_heads / p.n_kv_heads, hchunks = (group + 15) / 16;
  // The cluster merge by itself when its clusters take at most a third of those the device runs
  // at once: at batch 1 on the Llama-3-8B shape (8 clusters) it replaces the last block's fence,
  // counter and partials' round trip (2.4 us a layer): 445 -> 450 tok/s on the H200; at batch 2
  // (16) it lost 1 % (docs/kernels.md, "Session 11").
  const double share = decode_cluster_share<DMAX>(n_tokens, p, s.info());
  const bool fits = share > 0 && share <= 1;
  if (p.merge == DecodeMerge::kCluster && !fits)
    return Status::unsupported("paged_decode_attention: the cluster merge does not apply here (sm_90, head_dim <= 128, "
                               "at most {} keys, one wave of clusters)", kClusterMaxKeys);
  const bool cluster = p.merge == DecodeMerge::kCluster ||
                       (p.merge == DecodeMerge::kAuto && fits && share <= 1.0 / 3 && cluster_merge_allowed());
  const auto* k = static_cast<const uint16_t*>(kc);
  const auto* v = static_cast<const uint16_t*>(vc);
  if constexpr (DMAX <= 128) {
    if (cluster) {
      constexpr int kCL = kClusterSplits;
      NB_TRY(cuda_status(allow_decode_smem<DMAX, kClusterWarps, kCL>(), "paged_decode_attention: shared memory limit"));
      const dim3 grid(kCL, p.n_kv_heads * hchunks, n_tokens);
      return launch_pdl_cluster("paged_decode_attention", kCL, decode_mma_kernel<DMAX, kClusterWarps, kCL>, grid,
                                dim3(kClusterWarps * 32), decode_mma_smem<kClusterWarps>(p.head_dim), s, q, positions,
                                token_seq, block_tables, k, v, p, kCL, static_cast<float*>(nullptr),
                                static_cast<int*>(nullptr), out);
    }
  }
  const int n_splits = decode_splits(n_tokens, p, s.info());
  float* ws = nullptr;
  int* counters = nullptr;
  if (n_splits > 1) {
    const size_t n_part = static_cast<size_t>(n_tokens) * p.n_heads * n_splits;
    NB_TRY(s.scratch(n_part * (p.head_dim + 2) * sizeof(float),
                     static_cast<size_t>(n_tokens) * p.n_kv_heads * hchunks, &ws, &counters));
  }
  NB_TRY(cuda_status(allow_decode_smem<DMAX, 4, 1>(), "paged_decode_attention: shared memory limit"));
  const dim3 grid(n_splits, p.n_kv_heads * hchunks, n_tokens);
  return launch_pdl("paged_decode_attention", decode_mma_kernel<DMAX, 4, 1>, grid, dim3(4 * 32),
                    decode_mma_smem<4>(p.head_dim), s, q, positions, token_seq, block_tables, k, v, p, n_splits, ws,
                    counters, out);
}

Status decode_bf16(const uint16_t* q, const int32_t* positions, const int32_t* token_seq, const int32_t* block_tables,
                   const void* kc, const void* vc, int n_tokens, const DecodeAttnParams& p, uint16_t* out, Stream& s) {
  if (p.head_dim <= 0 || p.head_dim % 8 != 0 || p.head_dim > 256)
    return Status::unsupported("paged_decode_attention: head_dim must be a multiple of 8 up to 256, got {}", p.head_dim);
  if (n_tokens > 65535) return Status::unsupported("paged_decode_attention: at most 65535 tokens, got {}", n_tokens);
  const int dp = (p.head_dim + 15) & ~15;
  if (dp <= 32) return launch_decode_mma<32>(q, positions, token_seq, block_tables, kc, vc, n_tokens, p, out, s);
  if (dp <= 64) return launch_decode_mma<64>(q, positions, token_seq, block_tables, kc, vc, n_tokens, p, out, s);
  if (dp <= 128) return launch_decode_mma<128>(q, positions, token_seq, block_tables, kc, vc, n_tokens, p, out, s);
  return launch_decode_mma<256>(q, positions, token_seq, block_tables, kc, vc, n_tokens, p, out, s);
}

}  // namespace

ScratchNeed paged_decode_attention_scratch(int max_tokens, const DecodeAttnParams& p, const DeviceInfo& info) {
  ScratchNeed need;
  if (p.cache != CacheType::kBF16 || p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0) return need;
  const int hchunks = (p.n_heads / p.n_kv_heads + 15) / 16;
  for (int t = 1; t <= max_tokens; ++t) {
    const int n_splits = decode_splits(t, p, info);
    if (n_splits == 1) continue;
    need.bytes = std::max(need.bytes, static_cast<size_t>(t) * p.n_heads * n_splits * (p.head_dim + 2) * sizeof(float));
    need.counters = std::max(need.counters, static_cast<size_t>(t) * p.n_kv_heads * hchunks);
  }
  return need;
}

Status paged_decode_attention(const uint16_t* q, const int32_t* positions, const int32_t* token_seq,
                              const int32_t* block_tables, const void* k_cache, const void* v_cache, int n_tokens,
                              const DecodeAttnParams& p, uint16_t* out, Stream& s) {
  if (p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0)
    return Status::invalid("paged_decode_attention: n_heads {} is not a multiple of n_kv_heads {}", p.n_heads, p.n_kv_heads);
  if (p.cache == CacheType::kF32)
    return launch_attn<float>(q, positions, token_seq, block_tables, k_cache, v_cache, n_tokens, p, out, s);
  return decode_bf16(q, positions, token_seq, block_tables, k_cache, v_cache, n_tokens, p, out, s);
}

}  // namespace nibble::cuda

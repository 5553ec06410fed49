// The 4-bit GEMV / skinny-GEMM kernel shared by NF4, INT4 and MXFP4 (one .cu per format
// instantiates it with that format's scale policy). Layout and design: gemv_w4.h, docs/kernels.md.
//
// Block (bx, split): rows [16 * rt * bx, + 16 * rt), units [KU * split / splits, ...). Its warps
// take the 64-column units round-robin, for all rt row tiles at once. Each warp streams its units
// through its own ring of `stages` shared-memory slots filled by cp.async (weights evict-first,
// activations evict-last), so `stages` units per warp are in flight whatever the compute does.
// A unit's codes are decoded through a byte -> bf16x2 table in shared memory (replicated 32 times
// so that lane l always reads bank l: no conflicts whatever the codes), multiplied on the tensor
// cores (m16n8k16, weights as A so that M <= 8 wastes no weight bandwidth), and scaled per block
// in fp32. Warps then reduce through shared memory; with split-K the last block of a row tile to
// arrive adds the splits' partials in a fixed order.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <utility>

#include "ops/cuda/common.cuh"
#include "ops/cuda/gemv_config.h"
#include "ops/cuda/gemv_w4.h"

namespace nibble::cuda {

// Everything a launch needs, passed by value as one __grid_constant__ parameter.
struct W4KernelParams {
  const uint8_t* q;         // [n16][ku][32][16]
  const uint8_t* scales;    // format-specific, see W4Packed
  const uint8_t* zeros;     // INT4 zero points or null
  const float* nested;      // NF4 double-quant nested absmax or null
  const float* dmap;        // NF4 double-quant dynamic map [256] or null
  const uint16_t* x;        // [m, k] bf16
  uint16_t* y;              // [m, n] bf16
  float* ws;                // [splits, m, n] fp32 partials (splits > 1)
  int* counters;            // [gridDim.x] arrival counters, zero between launches
  float code[16];
  float offset;
  int m, n, k, n16, ku, splits;
  uint32_t flags;
};

// ---- scale policies -------------------------------------------------------------------------
// chunk(): the 16-byte piece of this (row tile, unit)'s scale bytes that a lane copies into the
// ring slot's 80-byte scale area (if any), and how far its source moves per step of W units.
// read(): lane group g's raw words (rows g and g + 8) from the slot.
// decode(): s[group][0] for row g, s[group][1] for row g + 8; kSG scale groups per unit (the
// unit's column halves h = 0, 1 belong to group h * kSG / 2).
// adjust(): optional change to the decoded bf16x2 A registers (INT4 zero points).

struct ScaleChunk {
  const uint8_t* src = nullptr;
  int dst = 0;      // byte offset in the slot's scale area
  int advance = 0;  // bytes the source moves per step
};

struct FmtNf4 {
  static constexpr int kSG = 1;
  static constexpr const char* kName = "gemv_nf4";
  // The 16-byte scale chunk this lane copies for (row tile, unit), where it goes in the slot's
  // 80-byte scale area, and how far the source moves per step of W units (src null: none).
  __device__ static ScaleChunk chunk(const W4KernelParams& p, int rt, int u, int lane, int w) {
    const size_t unit = static_cast<size_t>(rt) * p.ku + u;
    if (p.flags & kW4DoubleQuant)  // 8 x uint16
      return lane == 0 ? ScaleChunk{p.scales + unit * 16, 0, 16 * w} : ScaleChunk{};
    return lane < 4 ? ScaleChunk{p.scales + unit * 64 + 16 * lane, 16 * lane, 64 * w} : ScaleChunk{};  // 8 x float2
  }
  __device__ static void read(const W4KernelParams& p, uint32_t src, int g, uint32_t (&raw)[2]) {
    if (p.flags & kW4DoubleQuant) {
      raw[0] = lds_u16(src + 2 * g);
      raw[1] = 0;
    } else {
      const uint2 v = lds_v2(src + 8 * g);
      raw[0] = v.x;
      raw[1] = v.y;
    }
  }
  __device__ static void decode(const W4KernelParams& p, const float* dmap, const uint32_t (&raw)[2],
                                int b0, float (&s)[kSG][2]) {
    if (p.flags & kW4DoubleQuant) {
      // absmax = dmap[q] * nested[b / 256] + offset, two separately rounded fp32 operations
      // (bitsandbytes' order), b = the canonical block index row * KU + u (b0 for row g).
      const int b1 = b0 + 8 * p.ku;
      s[0][0] = __fadd_rn(__fmul_rn(dmap[raw[0] & 0xFF], __ldg(p.nested + (b0 >> 8))), p.offset);
      s[0][1] = __fadd_rn(__fmul_rn(dmap[(raw[0] >> 8) & 0xFF], __ldg(p.nested + (b1 >> 8))), p.offset);
    } else {
      s[0][0] = __uint_as_float(raw[0]);
      s[0][1] = __uint_as_float(raw[1]);
    }
  }
  __device__ static void adjust(const W4KernelParams&, const uint32_t (&)[2], uint32_t (&)[4]) {}
};

struct FmtInt4 {
  static constexpr int kSG = 1;  // group 128 = two units; each unit applies its group's scale
  static constexpr const char* kName = "gemv_int4";
  // Groups are two units and W is even, so the group index also moves linearly: W / 2 per step.
  __device__ static ScaleChunk chunk(const W4KernelParams& p, int rt, int u, int lane, int w) {
    const size_t grp = static_cast<size_t>(rt) * (p.ku >> 1) + (u >> 1);
    if (lane < 2) return {p.scales + grp * 32 + 16 * lane, 16 * lane, 16 * w};                 // 8 x uint32
    if (lane == 2 && (p.flags & kW4HasZeros)) return {p.zeros + grp * 16, 64, 8 * w};           // 8 x uint16
    return {};
  }
  __device__ static void read(const W4KernelParams& p, uint32_t src, int g, uint32_t (&raw)[2]) {
    raw[0] = lds_u32(src + 4 * g);
    raw[1] = (p.flags & kW4HasZeros) ? lds_u16(src + 64 + 2 * g) : 0u;
  }
  __device__ static void decode(const W4KernelParams& p, const float*, const uint32_t (&raw)[2], int,
                                float (&s)[kSG][2]) {
    if (p.flags & kW4ScaleF16) {
      s[0][0] = __half2float(__ushort_as_half(static_cast<unsigned short>(raw[0] & 0xFFFF)));
      s[0][1] = __half2float(__ushort_as_half(static_cast<unsigned short>(raw[0] >> 16)));
    } else {
      s[0][0] = bf16_bits_to_f32(raw[0] & 0xFFFF);
      s[0][1] = bf16_bits_to_f32(raw[0] >> 16);
    }
  }
  // With zero points the table holds the raw code c; subtract the row's zero (exact in bf16:
  // |c - z| <= 16). Registers 0, 2 are row g, 1, 3 row g + 8.
  __device__ static void adjust(const W4KernelParams& p, const uint32_t (&raw)[2], uint32_t (&a)[4]) {
    if (!(p.flags & kW4HasZeros)) return;
    const __nv_bfloat162 z0 = __float2bfloat162_rn(static_cast<float>(raw[1] & 0xFF));
    const __nv_bfloat162 z1 = __float2bfloat162_rn(static_cast<float>((raw[1] >> 8) & 0xFF));
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      __nv_bfloat162 v = *reinterpret_cast<__nv_bfloat162*>(&a[r]);
      v = __hsub2(v, (r & 1) ? z1 : z0);
      a[r] = *reinterpret_cast<uint32_t*>(&v);
    }
  }
};

struct FmtMxfp4 {
  static constexpr int kSG = 2;  // blocks of 32: the unit's two column halves
  static constexpr const char* kName = "gemv_mxfp4";
  __device__ static ScaleChunk chunk(const W4KernelParams& p, int rt, int u, int lane, int w) {
    const size_t unit = static_cast<size_t>(rt) * p.ku + u;
    return lane < 2 ? ScaleChunk{p.scales + unit * 32 + 16 * lane, 16 * lane, 32 * w} : ScaleChunk{};  // 8 x uint32
  }
  __device__ static void read(const W4KernelParams&, uint32_t src, int g, uint32_t (&raw)[2]) {
    raw[0] = lds_u32(src + 4 * g);
    raw[1] = 0;
  }
  // E8M0 -> fp32 power of two; code 0 is 2^-127 (an fp32 subnormal), 255 is NaN.
  __device__ static float e8m0(uint32_t e) {
    return e == 0 ? __uint_as_float(0x00400000u) : e == 255 ? __uint_as_float(0x7FC00000u) : __uint_as_float(e << 23);
  }
  __device__ static void decode(const W4KernelParams&, const float*, const uint32_t (&raw)[2], int,
                                float (&s)[kSG][2]) {
    s[0][0] = e8m0(raw[0] & 0xFF);
    s[0][1] = e8m0((raw[0] >> 8) & 0xFF);
    s[1][0] = e8m0((raw[0] >> 16) & 0xFF);
    s[1][1] = e8m0(raw[0] >> 24);
  }
  __device__ static void adjust(const W4KernelParams&, const uint32_t (&)[2], uint32_t (&)[4]) {}
};

// ---- the kernel ---------------------------------------------------------------------------

template <class F, int NT, int W, int RT, int S>
__global__ void __launch_bounds__(W * 32) gemv_w4_kernel(const __grid_constant__ W4KernelParams p) {
  // lut[b * 32 + l]: bf16x2 of (code[b & 15], code[b >> 4]) for lane l. Reused for the reduction.
  __shared__ __align__(16) uint32_t lut[256 * 32];
  __shared__ float dmap[256];
  extern __shared__ __align__(16) uint8_t ring[];  // [W][S][stage bytes]
  static_assert(W * RT * 16 * NT * 8 <= 256 * 32, "reduction does not fit the table area");

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int rt0 = blockIdx.x * RT;
  const int split = blockIdx.y;
  const int u_begin = static_cast<int>(static_cast<int64_t>(p.ku) * split / p.splits);
  const int u_end = static_cast<int>(static_cast<int64_t>(p.ku) * (split + 1) / p.splits);
  const int n_mine = u_end - u_begin > warp ? (u_end - u_begin - warp + W - 1) / W : 0;  // warp-uniform
  const int stage_bytes = gemv_stage_bytes(RT, p.m);
  const uint32_t my_ring = smem_addr(ring) + warp * S * stage_bytes;  // shared-window address
  const uint64_t pol_w = evict_first_policy();  // weights and scales: read exactly once
  const uint64_t pol_x = evict_last_policy();   // activations: every block reads them

  // Per-lane running sources, set for this warp's first unit and moved by W units per issue.
  const int u_first = u_begin + warp;
  const uint8_t* q_src[RT];
  ScaleChunk sc[RT];
  bool rt_ok[RT];
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    const int rt = rt0 + r;
    rt_ok[r] = rt < p.n16;
    q_src[r] = p.q + ((static_cast<size_t>(rt) * p.ku + u_first) * 32 + lane) * 16;
    sc[r] = F::chunk(p, rt, u_first, lane, W);
  }
  constexpr int kXChunks = NT * 2;  // 16-byte pieces of x per unit: 8 per token, 32 lanes
  const uint16_t* x_src[kXChunks];
  int x_dst[kXChunks];
  bool x_ok[kXChunks];
#pragma unroll
  for (int j = 0; j < kXChunks; ++j) {
    const int c = lane + 32 * j, tok = c >> 3, piece = c & 7;
    x_ok[j] = tok < p.m;
    x_src[j] = p.x + static_cast<size_t>(min(tok, p.m - 1)) * p.k + u_first * 64 + piece * 8;
    x_dst[j] = RT * 592 + tok * 144 + piece * 16;
  }
  int slot_in = 0;  // next ring slot to fill

  auto issue = [&]() {
    const uint32_t st = my_ring + slot_in * stage_bytes;
    slot_in = slot_in + 1 == S ? 0 : slot_in + 1;
#pragma unroll
    for (int r = 0; r < RT; ++r) {
      if (rt_ok[r]) {
        cp_async16(st + r * 512 + lane * 16, q_src[r], pol_w);
        if (sc[r].src) cp_async16(st + RT * 512 + r * 80 + sc[r].dst, sc[r].src, pol_w);
      }
      q_src[r] += W * 512;
      if (sc[r].src) sc[r].src += sc[r].advance;
    }
#pragma unroll
    for (int j = 0; j < kXChunks; ++j) {
      if (x_ok[j]) cp_async16(st + x_dst[j], x_src[j], pol_x);
      x_src[j] += W * 64;
    }
  };

  float acc[RT][NT][4];
#pragma unroll
  for (int i = 0; i < RT; ++i)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][nt][c] = 0.0f;

  // lut entry b for this lane sits at byte b * 128 + lane * 4: byte r of a word is one PRMT
  // (zero-extended) and one LEA away from its address.
  const uint32_t lut_lane = smem_addr(lut) + lane * 4;
  auto lookup = [&](uint32_t word, int r) { return lds_u32(lut_lane + (__byte_perm(word, 0, 0x4440 | r) << 7)); };

  auto compute = [&](uint32_t st, int u) {
    // Activation fragments: token nt*8 + g, columns 32h + 8t .. + 8 of the unit (rows past M
    // read row M - 1: garbage in output columns nobody reads).
    uint4 xf[NT][2];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const uint32_t xr = st + RT * 592 + min(nt * 8 + g, p.m - 1) * 144 + t * 16;
      xf[nt][0] = lds_v4(xr);
      xf[nt][1] = lds_v4(xr + 64);
    }
#pragma unroll
    for (int i = 0; i < RT; ++i) {
      if (!rt_ok[i]) continue;
      uint32_t raw[2];
      F::read(p, st + RT * 512 + i * 80, g, raw);
      float s[F::kSG][2];
      F::decode(p, dmap, raw, ((rt0 + i) * 16 + g) * p.ku + u, s);
      const uint4 q = lds_v4(st + i * 512 + lane * 16);
      const uint32_t w[4] = {q.x, q.y, q.z, q.w};
      float d[NT][4];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if (h == 0 || F::kSG == 2) {
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) d[nt][0] = d[nt][1] = d[nt][2] = d[nt][3] = 0.0f;
        }
#pragma unroll
        for (int ss = 0; ss < 2; ++ss) {
          const uint32_t word = w[2 * h + ss];
          uint32_t a[4] = {lookup(word, 0), lookup(word, 1), lookup(word, 2), lookup(word, 3)};
          F::adjust(p, raw, a);
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            const uint4 xv = xf[nt][h];
            mma_bf16_16816(d[nt], a, ss == 0 ? xv.x : xv.z, ss == 0 ? xv.y : xv.w);
          }
        }
        if (h == 1 || F::kSG == 2) {
          const int sg = F::kSG == 2 ? h : 0;
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            acc[i][nt][0] = fmaf(d[nt][0], s[sg][0], acc[i][nt][0]);
            acc[i][nt][1] = fmaf(d[nt][1], s[sg][0], acc[i][nt][1]);
            acc[i][nt][2] = fmaf(d[nt][2], s[sg][1], acc[i][nt][2]);
            acc[i][nt][3] = fmaf(d[nt][3], s[sg][1], acc[i][nt][3]);
          }
        }
      }
    }
  };

  // Fill the ring before building the table, so the first loads' latency overlaps the setup.
#pragma unroll
  for (int i = 0; i < S - 1; ++i) {
    if (i < n_mine) issue();
    cp_async_commit();  // empty groups keep the group count uniform
  }
  for (int b = tid; b < 256; b += W * 32) {
    // Thread b writes the 32 copies of entry b as 8 16-byte stores, rotated so that the 8 lanes
    // of a store phase hit different banks.
    const uint32_t v = pack_bf16x2(p.code[b & 15], p.code[b >> 4]);
    const uint4 v4 = make_uint4(v, v, v, v);
#pragma unroll
    for (int c = 0; c < 8; ++c) reinterpret_cast<uint4*>(lut)[b * 8 + ((c + b) & 7)] = v4;
  }
  if (p.dmap != nullptr)
    for (int i = tid; i < 256; i += W * 32) dmap[i] = p.dmap[i];
  __syncthreads();

  int slot_out = 0;
  for (int i = 0; i < n_mine; ++i) {
    if (i + S - 1 < n_mine) issue();  // into the slot computed last iteration
    cp_async_commit();
    cp_async_wait<S - 1>();  // this lane's copies for unit i have landed
    __syncwarp();            // ... and every other lane's
    compute(my_ring + slot_out * stage_bytes, u_first + i * W);
    slot_out = slot_out + 1 == S ? 0 : slot_out + 1;
    __syncwarp();            // nobody refills that slot before all lanes have read it
  }

  // ---- cross-warp reduction through shared memory: red[warp][row][col] ----
  constexpr int R = RT * 16, C = NT * 8;
  __syncthreads();  // every warp is done with the table
  float* red = reinterpret_cast<float*>(lut);
#pragma unroll
  for (int i = 0; i < RT; ++i)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      float* r0 = red + (warp * R + i * 16 + g) * C + nt * 8 + 2 * t;
      r0[0] = acc[i][nt][0];
      r0[1] = acc[i][nt][1];
      r0[8 * C] = acc[i][nt][2];
      r0[8 * C + 1] = acc[i][nt][3];
    }
  __syncthreads();

  const int row0 = rt0 * 16;
  const int rows = min(R, p.n - row0);
  for (int idx = tid; idx < R * p.m; idx += W * 32) {
    const int row = idx % R, m = idx / R;
    if (row >= rows) continue;
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < W; ++w) v += red[(w * R + row) * C + m];
    const size_t o = static_cast<size_t>(m) * p.n + row0 + row;
    if (p.splits == 1) {
      p.y[o] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
    } else {
      p.ws[static_cast<size_t>(split) * p.m * p.n + o] = v;
    }
  }
  if (p.splits == 1) return;

  // ---- split-K: the last block of this row tile to finish adds the partials in split order ----
  __shared__ int is_last;
  __threadfence();
  __syncthreads();
  if (tid == 0) is_last = atomicAdd(p.counters + blockIdx.x, 1) == p.splits - 1;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  for (int idx = tid; idx < R * p.m; idx += W * 32) {
    const int row = idx % R, m = idx / R;
    if (row >= rows) continue;
    const size_t o = static_cast<size_t>(m) * p.n + row0 + row;
    float v = 0.0f;
    for (int sp = 0; sp < p.splits; ++sp) v += __ldcg(p.ws + static_cast<size_t>(sp) * p.m * p.n + o);
    p.y[o] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
  }
  if (tid == 0) p.counters[blockIdx.x] = 0;  // ready for the next launch
}

// ---- host side: the table of instantiations and the launch -------------------------------

template <class F, int I>
constexpr auto gemv_kernel_for() {
  constexpr GemvConfig c = kGemvConfigs[I];
  return &gemv_w4_kernel<F, c.nt, c.warps, c.rt, c.stages>;
}
template <class F, size_t... I>
constexpr auto gemv_kernel_table(std::index_sequence<I...>) {
  using K = void (*)(W4KernelParams);
  return std::array<K, sizeof...(I)>{gemv_kernel_for<F, static_cast<int>(I)>()...};
}

// Checks, picks the configuration and the split count, launches.
template <class F>
Status gemv_w4_launch(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config) {
  if (m < 1 || m > 32) return Status::unsupported("{}: M must be 1..32, got {}", F::kName, m);
  if (w.k % 64 != 0) return Status::unsupported("{}: K must be a multiple of 64, got {}", F::kName, w.k);
  if ((reinterpret_cast<uintptr_t>(x) & 15) != 0)
    return Status::invalid("{}: x must be 16-byte aligned", F::kName);
  if (w.n == 0) return Status::ok();
  const int nt = gemv_nt_for(m);
  if (config < 0) config = gemv_default_config(s.info(), m, w.n, w.k);
  if (config >= kGemvConfigCount || kGemvConfigs[config].nt != nt)
    return Status::invalid("{}: configuration {} does not serve M = {}", F::kName, config, m);
  static constexpr auto kernels = gemv_kernel_table<F>(std::make_index_sequence<kGemvConfigCount>{});
  const auto kernel = kernels[config];
  const GemvConfig c = kGemvConfigs[config];

  W4KernelParams p{};
  p.q = w.q.get();
  p.scales = w.scales.get();
  p.zeros = w.zeros.get();
  p.nested = w.nested.get();
  p.dmap = w.dmap.size() ? w.dmap.get() : nullptr;
  p.x = x;
  p.y = y;
  for (int i = 0; i < 16; ++i) p.code[i] = w.code[i];
  p.offset = w.offset;
  p.m = m;
  p.n = static_cast<int>(w.n);
  p.k = static_cast<int>(w.k);
  p.n16 = static_cast<int>(w4_n16(w.n));
  p.ku = static_cast<int>(w.k / 64);
  p.flags = w.flags;

  // Shared memory: the per-warp rings are dynamic (their size depends on M); raise the kernel's
  // limit once, and ask the resident blocks per SM once per (configuration, M): both queries
  // cost microseconds of host time, as much as a small GEMV (one GPU model per process assumed).
  const size_t smem = static_cast<size_t>(c.warps) * c.stages * gemv_stage_bytes(c.rt, m);
  static std::array<std::atomic<int>, kGemvConfigCount * 33> occupancy{};
  std::atomic<int>& occ = occupancy[config * 33 + m];
  int per_sm = occ.load(std::memory_order_relaxed);
  if (per_sm == 0) {
    NB_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    NB_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, c.warps * 32, smem));
    if (per_sm == 0)
      return Status::unsupported("{}: configuration {} needs {} bytes of shared memory for M = {}", F::kName,
                                 config, smem, m);
    occ.store(per_sm, std::memory_order_relaxed);
  }
  // Split K across blocks only when the row tiles alone leave SMs idle: enough blocks for one
  // full wave, and each warp still gets at least a ring's worth of units.
  const int blocks_n = ceil_div(p.n16, c.rt);
  const int wave = per_sm * s.info().sm_count;
  int splits = std::max(1, wave / blocks_n);
  splits = std::min({splits, std::max(1, p.ku / (c.stages * c.warps)), 32});
  p.splits = splits;
  if (splits > 1) {
    NB_TRY(s.scratch(static_cast<size_t>(splits) * m * w.n * sizeof(float), blocks_n, &p.ws, &p.counters));
  }
  return launch(F::kName, kernel, dim3(blocks_n, splits), dim3(c.warps * 32), smem, s.get(), p);
}

}  // namespace nibble::cuda

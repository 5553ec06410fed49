// The 4-bit GEMV / skinny-GEMM kernel shared by NF4, INT4 and MXFP4 (one .cu per format
// instantiates it with that format's policy). Layout and design: gemv_w4.h, docs/kernels.md.
//
// v3. Block (bx, split): warp w owns row tiles [rt, rt + RT), rt = (bx * W + w) * RT, and walks the
// block's K range [KU * split / splits, ...) one 64-column unit at a time. Nothing is shared between
// warps but the decode table, so there is no cross-warp reduction:
//  - weights stream straight into registers (16-byte loads, L1 bypassed, L2 evict-first), AHEAD
//    units ahead of the one being computed, in a rolling set of 4 register slots;
//  - activations come through L1 (every warp of the block reads the same ones), XAHEAD units ahead;
//  - each unit's scale data is loaded and decoded once per row pair: lane t of group g does unit
//    u0 + t of a group of 4 units, and the unit's compute takes it from lane 4g + j by shuffle;
//  - codes become bf16 MMA operands by a byte -> bf16x2 table in shared memory (NF4, E2M1) or by
//    arithmetic (INT4: OR the nibbles into the mantissa of 128.0, subtract 128 + zero);
//  - m16n8k16 with the 16 weight rows as A (M <= 8 costs the weight traffic and decode of M = 1),
//    each unit's MMAs into a fresh fragment, scaled per block in fp32.
// With split-K the last block of a row-tile group to arrive adds the splits' partials in order.
// v4 (docs/kernels.md, items 10-14): launched with PDL (the weight prologue runs before
// pdl_wait()); KW warps of a block may split its K range and add in shared memory; two measured
// dead ends stay selectable by configuration: an L2 bulk prefetch PF units ahead and the register
// decode of RD words per unit for the table formats.
// Session 6 (XS): for 17-32 rows the block may stage its activations in shared memory, a group of
// 4 units at a time by cp.async, and its warps read their B fragments from there.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
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
  W4DqParts dq;  // NF4 double-quant: each part's offset and where the up rows' nested absmax starts
  int m, n, k, n16, ku, splits;
  uint32_t flags;
  int pdl_early;  // 1: pdl_trigger() at the start of every block, 0: after its main loop
  int glu;        // W4Epilogue: 0 y = x W^T; 1 silu(gate) * up, 2 gelu_tanh(gate) * up into y [m, n / 2]
};

// The gated epilogue's output from a gate and an up accumulator: both rounded to bf16 first, as
// the unfused path stores them, then act(gate) * up rounded once (act_mul_fused's arithmetic).
__device__ __forceinline__ uint16_t glu_value(float gate, float up, bool gelu_tanh) {
  const float gb = __bfloat162float(__float2bfloat16_rn(gate)), ub = __bfloat162float(__float2bfloat16_rn(up));
  return __bfloat16_as_ushort(__float2bfloat16_rn(gated_act(gb, gelu_tanh) * ub));
}

// A finished D fragment of row tile `tile` (lane group g: rows g and g + 8; tokens tok0, tok0 + 1)
// into y as bf16. With the gated epilogue rows g and g + 8 of the tile are the gate and the up
// of output column 8 * tile + g (w4_interleave_glu), so the lane finishes both tokens' outputs alone.
__device__ __forceinline__ void store_fragment(const W4KernelParams& p, int tile, int g, int tok0, const float (&v)[4]) {
  if (p.glu == 0) {
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int row = tile * 16 + g + 8 * (c >> 1), tok = tok0 + (c & 1);
      if (row < p.n && tok < p.m) p.y[static_cast<size_t>(tok) * p.n + row] = __bfloat16_as_ushort(__float2bfloat16_rn(v[c]));
    }
  } else {
    const int half = p.n >> 1, col = tile * 8 + g;  // n % 16 == 0 (host)
#pragma unroll
    for (int e = 0; e < 2; ++e)
      if (col < half && tok0 + e < p.m) p.y[static_cast<size_t>(tok0 + e) * half + col] = glu_value(v[e], v[2 + e], p.glu == 2);
  }
}

// Split-K: every block has written its fp32 partials of rows [row0, row0 + R) to p.ws; the last
// block of this row group (blockIdx.x) to arrive adds them in split order (deterministic), writes
// y (or the gated epilogue's act(gate) * up) and resets its counter. Called by all n threads.
__device__ __forceinline__ void splitk_merge(const W4KernelParams& p, int row0, int R, int tid, int n, int* is_last) {
  __threadfence();
  __syncthreads();
  if (tid == 0) *is_last = atomicAdd(p.counters + blockIdx.x, 1) == p.splits - 1;
  __syncthreads();
  if (!*is_last) return;
  __threadfence();
  const int rows = min(R, p.n - row0);
  if (p.glu == 0) {
    for (int idx = tid; idx < R * p.m; idx += n) {
      const int row = idx % R, m = idx / R;
      if (row >= rows) continue;
      const size_t o = static_cast<size_t>(m) * p.n + row0 + row;
      float v = 0.0f;
      for (int sp = 0; sp < p.splits; ++sp) v += __ldcg(p.ws + static_cast<size_t>(sp) * p.m * p.n + o);
      p.y[o] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
    }
  } else {
    // Output column row0 / 2 + j: gate row row0 + 16 (j / 8) + j % 8, up row that + 8.
    for (int idx = tid; idx < R / 2 * p.m; idx += n) {
      const int j = idx % (R / 2), m = idx / (R / 2), rg = (j >> 3) * 16 + (j & 7);
      if (rg >= rows) continue;
      const size_t o = static_cast<size_t>(m) * p.n + row0 + rg;
      float vg = 0.0f, vu = 0.0f;  // one loop for both, not unrolled: the merge must not raise the
                                   // kernel's register count (INT4 entry 38 went 72 -> 77 with two)
#pragma unroll 1
      for (int sp = 0; sp < p.splits; ++sp) {
        const float* src = p.ws + static_cast<size_t>(sp) * p.m * p.n + o;
        vg += __ldcg(src);
        vu += __ldcg(src + 8);
      }
      p.y[static_cast<size_t>(m) * (p.n >> 1) + row0 / 2 + j] = glu_value(vg, vu, p.glu == 2);
    }
  }
  if (tid == 0) p.counters[blockIdx.x] = 0;  // ready for the next launch
}

// Activations: read by every warp of every block, so allocate in L1 and keep in L2.
__device__ __forceinline__ uint4 ld_keep_v4(const void* p, uint64_t pol) {
  uint4 v;
  asm("ld.global.nc.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p), "l"(pol));
  return v;
}

// (a & b) | c as one LOP3 (the compiler splits it in two when b and c are both immediates).
template <uint32_t B>
__device__ __forceinline__ uint32_t and_or(uint32_t a, uint32_t c) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(a), "n"(B), "r"(c));
  return d;
}

// One bulk prefetch of [p, p + bytes) into L2 (the TMA unit issues it: no load/store-unit work, no
// registers). bytes: a multiple of 16, p 16-byte aligned. sm_90 only; a no-op below.
__device__ __forceinline__ void prefetch_l2(const void* ptr, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(ptr), "r"(bytes) : "memory");
#endif
}

// Register decode of one word of 8 codes for the table formats (NF4, E2M1), no shared memory.
// The 16-entry codebook as bf16 is split into its low bytes tl[4] and high bytes th[4] (byte c % 4
// of word c / 4). PRMT indexes 8 bytes by a 3-bit selector nibble, and the code nibbles of the word
// are used as selectors directly: one PRMT reads entries 0..7 (selector = code), one entries 8..15
// (selector = code ^ 8); a selector nibble with bit 3 set returns a sign fill instead, so the two
// are merged by a mask of each code's bit 3 (a PRMT in sign mode over the word and word << 4).
// Per half word (4 codes, 2 A registers): 4 lookups + mask + 2 LOP3 merges + 2 PRMT to interleave
// low and high bytes; + 4 per word for the selectors: 22 instructions per 8 codes (the table: 12
// and 4 shared-memory wavefronts).
// PRMT with its selector taken as is: a selector nibble with bit 3 set returns the sign fill of the
// byte (PTX default mode; __byte_perm is documented as using 3-bit selectors only).
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
__device__ __forceinline__ void reg_codes(uint32_t w, const uint32_t (&tl)[4], const uint32_t (&th)[4], uint32_t (&a)[4]) {
  const uint32_t wx = w ^ 0x88888888u, w4 = w << 4;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const uint32_t sel = h ? w >> 16 : w, selx = h ? wx >> 16 : wx;
    // byte i: 0xFF where code nibble 4h + i has bit 3 set (its bit 3 is the msb of a byte of w or w << 4)
    const uint32_t m = prmt(w, w4, h ? 0xBFAEu : 0x9D8Cu);
    const uint32_t l0 = prmt(tl[0], tl[1], sel), l1 = prmt(tl[2], tl[3], selx);
    const uint32_t h0 = prmt(th[0], th[1], sel), h1 = prmt(th[2], th[3], selx);
    const uint32_t xl = (l0 & ~m) | (l1 & m), xh = (h0 & ~m) | (h1 & m);
    a[2 * h] = prmt(xl, xh, 0x5140u);      // (code n0, code n1): byte 2h of the word
    a[2 * h + 1] = prmt(xl, xh, 0x7362u);  // (code n2, code n3): byte 2h + 1
  }
}

// ---- format policies ------------------------------------------------------------------------
// src(): where this lane's scale data of (row tile rt, unit u) sits (lane group g: rows g, g + 8),
//   and how far it moves per group of 4 units. prefetch(): load it (raw), a group of units ahead. decode(): those raw words -> kScl decoded words, once per (row pair, unit).
// unpack(): the decoded words of the unit being computed (shuffled in) -> fp32 scales s[sg][row]
//   (kSG scale groups per unit: the unit's column halves h belong to group h * kSG / 2) and, for
//   INT4, the bf16x2 word subtracted from the codes. codes(): one 32-bit word of 8 codes -> the four
//   bf16x2 A registers (register r = byte r: low nibble column c, high nibble column c + 1).

// A word of two fp16 scales (row g in the low half, row g + 8 in the high one) as fp32 bits: NF4's
// fp16 absmax and INT4's fp16 scales.
__device__ __forceinline__ void half2_to_f32_bits(uint32_t w, uint32_t& lo, uint32_t& hi) {
  lo = __float_as_uint(__half2float(__ushort_as_half(static_cast<unsigned short>(w & 0xFFFF))));
  hi = __float_as_uint(__half2float(__ushort_as_half(static_cast<unsigned short>(w >> 16))));
}

struct ScaleSrc {
  const uint8_t* a;
  const uint8_t* b;
  int step_a, step_b;  // bytes per group of 4 units
};

// Table decode: lut entry b for lane l at byte b * 128 + l * 4 (replicated 32 times so lane l
// always reads bank l). One lookup = PRMT (byte r, zero-extended) + LEA + LDS.
__device__ __forceinline__ void lut_codes(uint32_t word, uint32_t lut_lane, uint32_t (&a)[4]) {
#pragma unroll
  for (int r = 0; r < 4; ++r) a[r] = lds_u32(lut_lane + (__byte_perm(word, 0, 0x4440 | r) << 7));
}

struct FmtNf4 {
  static constexpr bool kLut = true;
  static constexpr int kSG = 1, kPre = 3, kScl = 2;
  static constexpr const char* kName = "gemv_nf4";
  // Whether decoded word s is the same on every lane (no shuffle needed).
  __device__ static bool lane_uniform(const W4KernelParams&, int) { return false; }
  __device__ static ScaleSrc src(const W4KernelParams& p, int rt, int u, int g) {
    const size_t unit = static_cast<size_t>(rt) * p.ku + u;
    if (p.flags & kW4DoubleQuant) return {p.scales + unit * 16 + 2 * g, nullptr, 4 * 16, 0};  // uint16 codes, rows g | g + 8
    return {p.scales + unit * 64 + 8 * g, nullptr, 4 * 64, 0};                               // fp32 absmax, rows g, g + 8
  }
  // The scale bytes of units [u0, u1) of row tile rt (16-byte aligned, a multiple of 16), for the L2 prefetch.
  __device__ static void scale_span(const W4KernelParams& p, int rt, int u0, int u1, const uint8_t** ptr, uint32_t* bytes) {
    const int per = (p.flags & kW4DoubleQuant) ? 16 : 64;
    *ptr = p.scales + (static_cast<size_t>(rt) * p.ku + u0) * per;
    *bytes = static_cast<uint32_t>((u1 - u0) * per);
  }
  __device__ static void prefetch(const W4KernelParams& p, const ScaleSrc& sp, int rt, int b0, uint64_t pol,
                                  uint32_t (&pre)[kPre]) {
    if (p.flags & kW4DoubleQuant) {
      pre[0] = ld_stream_u16(sp.a, pol);
      // nested absmax of the blocks b = row * KU + u (b0 for row g; nested is padded to n16 * 16
      // rows); gate|up interleaved: of the part's own row 8 * rt + g. W4DqParts::nested_block
      // from b0, which the callers advance by a constant per group.
      if (p.flags & kW4NestedGlu) {
        const int b = b0 - 8 * rt * p.ku;
        pre[1] = __float_as_uint(__ldg(p.nested + (b >> 8)));
        pre[2] = __float_as_uint(__ldg(p.nested + p.dq.nested_hi + (b >> 8)));
      } else {
        pre[1] = __float_as_uint(__ldg(p.nested + (b0 >> 8)));
        pre[2] = __float_as_uint(__ldg(p.nested + ((b0 + 8 * p.ku) >> 8)));
      }
    } else {
      const uint2 v = ld_stream_v2(sp.a, pol);
      pre[0] = v.x;
      pre[1] = v.y;
    }
  }
  static constexpr bool kCanFold = false;
  __device__ static void decode(const W4KernelParams& p, const float* dmap, int rt, const uint32_t (&pre)[kPre],
                                uint32_t (&s)[kScl], bool) {
    if (p.flags & kW4DoubleQuant) {
      // absmax = dmap[q] * nested + offset, two separately rounded fp32 operations (bnb's order),
      // with the offset of the tile's part (W4DqParts)
      const int pi = p.dq.part_of(rt);
      s[0] = __float_as_uint(__fadd_rn(__fmul_rn(dmap[pre[0] & 0xFF], __uint_as_float(pre[1])), p.dq.off[pi][0]));
      s[1] = __float_as_uint(__fadd_rn(__fmul_rn(dmap[(pre[0] >> 8) & 0xFF], __uint_as_float(pre[2])), p.dq.off[pi][1]));
    } else {
      s[0] = pre[0];
      s[1] = pre[1];
    }
  }
  __device__ static void unpack(const W4KernelParams&, const uint32_t (&s)[kScl], float (&sc)[kSG][2], uint32_t (&)[2]) {
    sc[0][0] = __uint_as_float(s[0]);
    sc[0][1] = __uint_as_float(s[1]);
  }
  __device__ static void codes(uint32_t word, uint32_t lut_lane, const uint32_t (&)[2], uint32_t (&a)[4]) {
    lut_codes(word, lut_lane, a);
  }
};

// NF4 with fp16 absmax (kW4ScaleF16, w4_narrow_absmax), the engine's default form: its own policy
// rather than a third flag branch in FmtNf4, so that the scale path has no branches and holds one
// raw register a unit instead of three (kernels at the 128-register cap rebuild whatever does not
// fit). Instantiated in gemv_nf4_fp16.cu.
struct FmtNf4h : FmtNf4 {
  // kScl 1: the raw half2 word is what each unit takes by shuffle, converted after it (two
  // conversions a unit instead of a second shuffle: L1 / shared is the busiest unit at one row).
  static constexpr int kPre = 1, kScl = 1;
  __device__ static ScaleSrc src(const W4KernelParams& p, int rt, int u, int g) {
    const size_t unit = static_cast<size_t>(rt) * p.ku + u;
    return {p.scales + unit * 32 + 4 * g, nullptr, 4 * 32, 0};  // half2: rows g | g + 8
  }
  __device__ static void scale_span(const W4KernelParams& p, int rt, int u0, int u1, const uint8_t** ptr, uint32_t* bytes) {
    *ptr = p.scales + (static_cast<size_t>(rt) * p.ku + u0) * 32;
    *bytes = static_cast<uint32_t>((u1 - u0) * 32);
  }
  __device__ static void prefetch(const W4KernelParams&, const ScaleSrc& sp, int, int, uint64_t pol, uint32_t (&pre)[kPre]) {
    pre[0] = ld_stream_u32(sp.a, pol);
  }
  __device__ static void decode(const W4KernelParams&, const float*, int, const uint32_t (&pre)[kPre], uint32_t (&s)[kScl],
                                bool) {
    s[0] = pre[0];
  }
  __device__ static void unpack(const W4KernelParams&, const uint32_t (&s)[kScl], float (&sc)[kSG][2], uint32_t (&)[2]) {
    uint32_t lo, hi;
    half2_to_f32_bits(s[0], lo, hi);
    sc[0][0] = __uint_as_float(lo);
    sc[0][1] = __uint_as_float(hi);
  }
};

// FmtNf4h's instantiations (gemv_nf4_fp16.cu), which gemv_nf4 calls for fp16 absmax.
Status gemv_nf4_fp16(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config, W4Epilogue ep);

struct FmtInt4 {
  static constexpr bool kLut = false;
  static constexpr int kSG = 1, kPre = 2, kScl = 4;
  static constexpr const char* kName = "gemv_int4";
  // Symmetric weights: the subtracted word is 136 on every lane.
  __device__ static bool lane_uniform(const W4KernelParams& p, int s) { return s >= 2 && !(p.flags & kW4HasZeros); }
  static constexpr uint32_t kMagic = 0x43004300u;  // bf16x2 (128, 128): ORing a nibble in gives 128 + c
  // Group 128 = two units, and a unit group of 4 is two groups: the sources move 2 groups per step.
  __device__ static ScaleSrc src(const W4KernelParams& p, int rt, int u, int g) {
    const size_t grp = static_cast<size_t>(rt) * (p.ku >> 1) + (u >> 1);
    return {p.scales + grp * 32 + 4 * g, p.zeros + grp * 16 + 2 * g, 2 * 32, 2 * 16};
  }
  __device__ static void scale_span(const W4KernelParams& p, int rt, int u0, int u1, const uint8_t** ptr, uint32_t* bytes) {
    const size_t g0 = static_cast<size_t>(rt) * (p.ku >> 1);
    *ptr = p.scales + (g0 + (u0 >> 1)) * 32;  // groups u0 / 2 .. (u1 - 1) / 2 (zero points not prefetched)
    *bytes = static_cast<uint32_t>((((u1 - 1) >> 1) - (u0 >> 1) + 1) * 32);
  }
  __device__ static void prefetch(const W4KernelParams& p, const ScaleSrc& sp, int, int, uint64_t pol, uint32_t (&pre)[kPre]) {
    pre[0] = ld_stream_u32(sp.a, pol);  // fp16 / bf16 scales, rows g | g + 8
    if (p.flags & kW4HasZeros) pre[1] = ld_stream_u16(sp.b, pol);  // zero points
  }
  // fold: the codes stay 128 + c and the kernel subtracts (128 + z) * sum(x) in fp32 after the
  // MMAs (words 2, 3 are then the fp32 128 + z of rows g, g + 8).
  static constexpr bool kCanFold = true;
  __device__ static void decode(const W4KernelParams& p, const float*, int, const uint32_t (&pre)[kPre], uint32_t (&s)[kScl],
                                bool fold) {
    if (p.flags & kW4ScaleF16) {
      half2_to_f32_bits(pre[0], s[0], s[1]);
    } else {
      s[0] = pre[0] << 16;
      s[1] = pre[0] & 0xFFFF0000u;
    }
    // bf16x2 (128 + z, 128 + z) per row: z in the mantissa of 128.0 (z <= 15), exact. Symmetric:
    // z = 8 on every lane (also lanes whose unit is past the end and loaded nothing).
    const uint32_t z = (p.flags & kW4HasZeros) ? pre[1] : 0x0808u;
    if (fold) {
      s[2] = __float_as_uint(128.0f + static_cast<float>(z & 0xFF));
      s[3] = __float_as_uint(128.0f + static_cast<float>((z >> 8) & 0xFF));
    } else {
      s[2] = __byte_perm(z, 0x43, 0x4040);
      s[3] = __byte_perm(z, 0x43, 0x4141);
    }
  }
  __device__ static void unpack(const W4KernelParams&, const uint32_t (&s)[kScl], float (&sc)[kSG][2], uint32_t (&zm)[2]) {
    sc[0][0] = __uint_as_float(s[0]);
    sc[0][1] = __uint_as_float(s[1]);
    zm[0] = s[2];
    zm[1] = s[3];
  }
  // Register r: byte r of the word (low nibble) and byte r of word >> 4 (high nibble) into the
  // two halves, masked to the nibble, ORed into 128.0: (128 + c_lo, 128 + c_hi); minus 128 + z of
  // its row (registers 0, 2 row g; 1, 3 row g + 8): c - z, exact. PRMT + LOP3 + HSUB2 per register.
  // Without the subtraction (fold): 128 + c.
  __device__ static void codes_raw(uint32_t word, uint32_t magic, uint32_t (&a)[4]) {
    const uint32_t hi = word >> 4;
#pragma unroll
    for (int r = 0; r < 4; ++r)
      a[r] = and_or<0x000F000Fu>(__byte_perm(word, hi, r | (r << 4) | ((4 + r) << 8) | ((4 + r) << 12)), magic);
  }
  __device__ static void codes(uint32_t word, uint32_t magic, const uint32_t (&zm)[2], uint32_t (&a)[4]) {
    const uint32_t hi = word >> 4;
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const uint32_t v = and_or<0x000F000Fu>(__byte_perm(word, hi, r | (r << 4) | ((4 + r) << 8) | ((4 + r) << 12)), magic);
      __nv_bfloat162 b = __hsub2(*reinterpret_cast<const __nv_bfloat162*>(&v),
                                 *reinterpret_cast<const __nv_bfloat162*>(&zm[r & 1]));
      a[r] = *reinterpret_cast<uint32_t*>(&b);
    }
  }
};

struct FmtMxfp4 {
  static constexpr bool kLut = true;
  static constexpr int kSG = 2, kPre = 1, kScl = 4;  // blocks of 32: the unit's two column halves
  static constexpr const char* kName = "gemv_mxfp4";
  __device__ static bool lane_uniform(const W4KernelParams&, int) { return false; }
  __device__ static ScaleSrc src(const W4KernelParams& p, int rt, int u, int g) {
    const size_t unit = static_cast<size_t>(rt) * p.ku + u;
    return {p.scales + unit * 32 + 4 * g, nullptr, 4 * 32, 0};  // (g, 2u), (g+8, 2u), (g, 2u+1), (g+8, 2u+1)
  }
  __device__ static void scale_span(const W4KernelParams& p, int rt, int u0, int u1, const uint8_t** ptr, uint32_t* bytes) {
    *ptr = p.scales + (static_cast<size_t>(rt) * p.ku + u0) * 32;
    *bytes = static_cast<uint32_t>((u1 - u0) * 32);
  }
  __device__ static void prefetch(const W4KernelParams&, const ScaleSrc& sp, int, int, uint64_t pol, uint32_t (&pre)[kPre]) {
    pre[0] = ld_stream_u32(sp.a, pol);
  }
  // E8M0 -> fp32 power of two; code 0 is 2^-127 (an fp32 subnormal), 255 is NaN.
  __device__ static uint32_t e8m0(uint32_t e) {
    return e == 0 ? 0x00400000u : e == 255 ? 0x7FC00000u : e << 23;
  }
  static constexpr bool kCanFold = false;
  __device__ static void decode(const W4KernelParams&, const float*, int, const uint32_t (&pre)[kPre], uint32_t (&s)[kScl], bool) {
#pragma unroll
    for (int i = 0; i < 4; ++i) s[i] = e8m0((pre[0] >> (8 * i)) & 0xFF);
  }
  __device__ static void unpack(const W4KernelParams&, const uint32_t (&s)[kScl], float (&sc)[kSG][2], uint32_t (&)[2]) {
    sc[0][0] = __uint_as_float(s[0]);
    sc[0][1] = __uint_as_float(s[1]);
    sc[1][0] = __uint_as_float(s[2]);
    sc[1][1] = __uint_as_float(s[3]);
  }
  __device__ static void codes(uint32_t word, uint32_t lut_lane, const uint32_t (&)[2], uint32_t (&a)[4]) {
    lut_codes(word, lut_lane, a);
  }
};

// ---- the kernel ---------------------------------------------------------------------------

// A block's shared tables, filled by its n threads before its first barrier: the byte -> bf16x2
// decode table (LUT formats; (code[b & 15], code[b >> 4]) for lane l at lut[b * stride + l]: stride
// 32 words, 32 KB, or 64 for the run kernel's wide table) and the NF4 double-quant map (when there
// is one).
template <bool kLut>
__device__ __forceinline__ void fill_decode_tables(const W4KernelParams& p, int tid, int n, uint32_t* lut, int stride,
                                                   float* dmap) {
  if constexpr (kLut) {
    for (int b = tid; b < 256; b += n) {
      // Thread b writes the 32 copies of entry b as 8 16-byte stores, rotated so that the 8
      // lanes of a store phase hit different banks.
      const uint32_t v = pack_bf16x2(p.code[b & 15], p.code[b >> 4]);
      const uint4 v4 = make_uint4(v, v, v, v);
#pragma unroll
      for (int c = 0; c < 8; ++c) reinterpret_cast<uint4*>(lut)[b * (stride / 4) + ((c + b) & 7)] = v4;
    }
  }
  if (p.dmap != nullptr)
    for (int i = tid; i < 256; i += n) dmap[i] = p.dmap[i];
}

template <class F, int NT, int W, int RT, int AHEAD, int XAHEAD, int CHAINS, int FOLD, int PF, int RD, int KW, int XS>
// The register cap: gemv_v4_min_blocks_per_sm (gemv_config.h), which the default rules rely on too.
__global__ void __launch_bounds__(W * 32, gemv_v4_min_blocks_per_sm(NT, W, RD > 0 && F::kLut))
    gemv_w4_kernel(const __grid_constant__ W4KernelParams p) {
  // Programmatic dependent launch (common.cuh). Everything up to pdl_wait() below reads only the
  // weight (no earlier kernel writes it): the register prologue, the L2 prefetch, the decode table.
  // The activations, the outputs and the split-K scratch and counters are touched only after it,
  // by every block. pdl_trigger() lets the next kernel's blocks launch: at the start (they then
  // take free slots during our whole main loop) or after the main loop (they overlap our tail).
  if (p.pdl_early) pdl_trigger();
  constexpr int G = 4;  // units per group: the loop's unroll, the rolling weight slots, the scale sharing
  static_assert(AHEAD >= 1 && AHEAD < G && XAHEAD >= 1 && XAHEAD < G, "loads run 1..3 units ahead");
  // CHAINS = 2: a unit's two column halves go into separate MMA accumulators (two chains of 2
  // MMAs instead of one of 4; the scale step then has twice the FFMAs). MXFP4 always has two.
  constexpr bool kSplitHalves = F::kSG == 2 || CHAINS == 2;
  // FOLD (INT4): the codes enter the MMAs as 128 + c (one LOP3 less a register: no HSUB2), and
  // (128 + z) * sum(x over the unit) comes off in fp32. sum(x) is one more MMA chain per unit with
  // A = 1, shared by the warp's row tiles.
  constexpr bool kFold = F::kCanFold && FOLD != 0;
  static_assert(PF % G == 0, "the L2 prefetch runs whole groups ahead");
  constexpr int kRd = F::kLut ? RD : 0;  // words per unit decoded in registers (the last kRd of 4)
  // KW > 1: the block's warps are W / KW row-tile groups of KW warps, which split the block's K
  // range among them and add their results in shared memory (in warp order: deterministic) before
  // the writes; no global partials for that part of the split.
  static_assert(KW >= 1 && W % KW == 0, "KW must divide the warps");
  // XS: the block's activations pass through shared memory, a group of G units (all M rows) at a
  // time, two stages: stage (base / G) & 1 holds units [base, base + G) of the block's K range as
  // rows of kXsRow bytes (gemv_config.h: 256 columns + 64 bytes, so that the two token rows a
  // quarter-warp reads fall in different bank halves). A warp's B fragments are then one shared
  // load per n-tile and half instead of one L1 load each, and no activation registers run ahead.
  static_assert(XS == 0 || KW == 1, "staged activations need every warp of the block on one K range");
  constexpr int kXsRow = kGemvXsRowBytes, kXsStage = NT * 8 * kXsRow;
  static_assert(kXsRow == G * 64 * 2 + 64, "a stage row is one group of units plus the padding");
  // lut[b * 32 + l]: bf16x2 of (code[b & 15], code[b >> 4]) for lane l.
  __shared__ __align__(16) uint32_t lut[F::kLut ? 256 * 32 : 4];
  __shared__ float dmap[256];
  __shared__ int is_last;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int wk = warp % KW;  // this warp's share of the block's K range
  const int rt_block = blockIdx.x * (W / KW) * RT;
  const int rt0 = rt_block + (warp / KW) * RT;
  const int split = blockIdx.y;  // the block's K range (its fp32 partials with p.splits > 1)
  const int ks = split * KW + wk, n_ks = p.splits * KW;
  const int u_begin = static_cast<int>(static_cast<int64_t>(p.ku) * ks / n_ks);
  const int u_end = static_cast<int>(static_cast<int64_t>(p.ku) * (ks + 1) / n_ks);
  const int n_units = u_end - u_begin;  // the same for every warp of the block when KW = 1
  const bool active = rt0 < p.n16;      // warp-uniform
  const uint64_t pol_w = evict_first_policy();  // weights and scales: read exactly once
  const uint64_t pol_x = evict_last_policy();   // activations: every block reads them

  // Running per-lane sources, at the current group's first unit (moved by G units per group, so
  // every load inside a group is base + constant offset).
  bool rt_ok[RT];
  const uint8_t* wp[RT];  // this lane's 16 bytes of (row tile, unit)
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    rt_ok[r] = rt0 + r < p.n16;
    wp[r] = p.q + ((static_cast<size_t>(rt_ok[r] ? rt0 + r : 0) * p.ku + u_begin) * 32 + lane) * 16;
  }
  // Activation fragments: token nt*8 + g, columns 32h + 8t .. + 8 of the unit. For the table
  // formats only lanes whose token is below M load them (x_live; the others keep the zeros below:
  // a B column past M only feeds a D column nobody stores). At M = 1 the 32 lanes of a 16-byte load
  // would ask L1 for the same 64 bytes 8 times over, 4 wavefronts where 1 does (Nsight: L1 is the
  // busiest unit, 82 %). One n-tile only, and not INT4: keeping the skipped lanes' old values live
  // raised INT4's entries 5 and 38 from 91 / 72 to 93 / 77 registers and cost 4 % (GEMV) to 9 % (end
  // to end), and NF4's entry 44 (two n-tiles) 80 more instructions and 2 % at batch 16; a predicate
  // inside the asm instead (undefined values, no branch) made ptxas spill in entry 37.
  constexpr bool kXLive = F::kLut && NT == 1;
  const uint16_t* xp[NT];
  bool x_live[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    xp[nt] = p.x + static_cast<size_t>(min(nt * 8 + g, p.m - 1)) * p.k + u_begin * 64 + 8 * t;
    x_live[nt] = !kXLive || nt * 8 + g < p.m;
  }
  const uint32_t magic = FmtInt4::kMagic + (p.m >> 30);  // a register, not an immediate (one LOP3 per word)

  uint4 wq[G][RT];        // weights of units i (slot i % G), AHEAD in flight
  constexpr int XR = XS ? 1 : XAHEAD == 1 ? 2 : G;  // activation ring: slot i % XR (XS: the unit's own)
  uint4 xf[XR][NT][2];    // activations of units i, XAHEAD in flight
  if constexpr (kXLive) {
#pragma unroll
    for (int i = 0; i < XR; ++i)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) xf[i][nt][0] = xf[i][nt][1] = make_uint4(0, 0, 0, 0);
  }
  uint32_t pre[RT][F::kPre];  // raw scale data of unit (group base + t), one group ahead
  float acc[RT][NT][4];
#pragma unroll
  for (int r = 0; r < RT; ++r)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[r][nt][c] = 0.0f;

  // j: unit index relative to the current group's first unit (a compile-time constant at every call).
  auto load_w = [&](int slot, int j) {
#pragma unroll
    for (int r = 0; r < RT; ++r)
      if (rt_ok[r]) wq[slot][r] = ld_stream_v4(wp[r] + j * 512, pol_w);
  };
  auto load_x = [&](int buf, int j) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      if (!x_live[nt]) continue;
      xf[buf][nt][0] = ld_keep_v4(xp[nt] + j * 64, pol_x);
      xf[buf][nt][1] = ld_keep_v4(xp[nt] + j * 64 + 32, pol_x);
    }
  };
  // XS: the copy of units [base, base + G) into their stage (16-byte pieces over the block's
  // threads; rows past M are not copied, their columns of D are never written), and a lane's B
  // fragments of unit j of the current group from it.
  extern __shared__ __align__(16) uint4 xs_smem[];
  const uint32_t xs_base = smem_addr(xs_smem);
  auto stage_x = [&](int base) {
    const uint32_t dst = xs_base + ((base / G) & 1) * kXsStage;
    const int rows = min(p.m, NT * 8), pieces = min(G, n_units - base) * 8;
    const uint16_t* src = p.x + static_cast<size_t>(u_begin + base) * 64;
    for (int idx = tid; idx < rows * 32; idx += W * 32) {
      const int row = idx >> 5, c = idx & 31;
      if (c < pieces) cp_async16(dst + row * kXsRow + c * 16, src + static_cast<size_t>(row) * p.k + c * 8, pol_x);
    }
  };
  auto load_xs = [&](int base, int j) {
    const uint32_t a = xs_base + ((base / G) & 1) * kXsStage + g * kXsRow + (j * 64 + 8 * t) * 2;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      xf[0][nt][0] = lds_v4(a + nt * 8 * kXsRow);
      xf[0][nt][1] = lds_v4(a + nt * 8 * kXsRow + 64);
    }
  };
  // Lane t's scale data is that of unit (group base + t); its sources move one group per call.
  ScaleSrc ssrc[RT];
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    ssrc[r] = F::src(p, rt_ok[r] ? rt0 + r : 0, u_begin + t, g);
#pragma unroll
    for (int i = 0; i < F::kPre; ++i) pre[r][i] = 0;  // decode reads them even for units past the end
  }
  const int b0 = (rt0 * 16 + g) * p.ku + u_begin + t;  // canonical NF4 block of (row g, unit u_begin + t)
  auto load_pre = [&](int base) {
    if (base + t < n_units) {
#pragma unroll
      for (int r = 0; r < RT; ++r)
        if (rt_ok[r]) F::prefetch(p, ssrc[r], rt0 + r, b0 + r * 16 * p.ku + base, pol_w, pre[r]);
    }
#pragma unroll
    for (int r = 0; r < RT; ++r) {
      ssrc[r].a += ssrc[r].step_a;
      ssrc[r].b += ssrc[r].step_b;
    }
  };

  // L2 prefetch (lane 0 of each warp, whose wp[r] is the current group's first unit): the first
  // PF units' weights and scales, then in the loop each group's weights PF units ahead (the scales
  // are loaded a group ahead anyway and are 1/16 to 1/32 of the bytes).
  auto prefetch_first = [&](int u1) {
    if (lane == 0 && u1 > 0) {
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        if (!rt_ok[r]) continue;
        prefetch_l2(wp[r], static_cast<uint32_t>(u1 * 512));
        const uint8_t* sp;
        uint32_t sb;
        F::scale_span(p, rt0 + r, u_begin, u_begin + u1, &sp, &sb);
        prefetch_l2(sp, sb);
      }
    }
  };

  // Start the first weight loads before building the table, so their latency overlaps the setup
  // (and, launched early with PDL, the previous kernel's tail).
  if (active && n_units > 0) {
    if constexpr (PF > 0) prefetch_first(min(PF, n_units));
#pragma unroll
    for (int i = 0; i < AHEAD; ++i)
      if (i < n_units) load_w(i, i);
    load_pre(0);
  }
  fill_decode_tables<F::kLut>(p, tid, W * 32, lut, 32, dmap);
  // The codebook's low and high bytes in registers for the register decode (entry c: byte c % 4 of word c / 4).
  uint32_t tl[4] = {0, 0, 0, 0}, th[4] = {0, 0, 0, 0};
  if constexpr (kRd > 0) {
#pragma unroll
    for (int c = 0; c < 16; ++c) {
      const uint32_t v = pack_bf16x2(p.code[c], 0.0f);
      tl[c >> 2] |= (v & 0xFF) << (8 * (c & 3));
      th[c >> 2] |= ((v >> 8) & 0xFF) << (8 * (c & 3));
    }
  }

  // From here on we read the activations, which the previous kernel may have written.
  pdl_wait();
  if constexpr (XS) {
    if (n_units > 0) stage_x(0);
    cp_async_commit();
  } else if (active && n_units > 0) {
#pragma unroll
    for (int i = 0; i < XAHEAD; ++i)
      if (i < n_units) load_x(i, i);
  }
  __syncthreads();

  // XS: every warp takes part in the staging and its barriers (a warp past the last row tile has
  // no rt_ok[r] and computes nothing).
  if (active || XS) {
    const uint32_t lut_lane = smem_addr(lut) + lane * 4;
    for (int base = 0; base < n_units; base += G) {
      if constexpr (XS) {
        // This group's stage has landed (own copies: wait; everyone's: the barrier), and every
        // warp is done with the other stage, which now takes the next group.
        cp_async_wait<0>();
        __syncthreads();
        if (base + G < n_units) stage_x(base + G);
        cp_async_commit();
      }
      if constexpr (PF > 0) {
        if (lane == 0 && base + PF < n_units) {
#pragma unroll
          for (int r = 0; r < RT; ++r)
            if (rt_ok[r]) prefetch_l2(wp[r] + PF * 512, static_cast<uint32_t>(min(G, n_units - base - PF) * 512));
        }
      }
      uint32_t scl[RT][F::kScl];
#pragma unroll
      for (int r = 0; r < RT; ++r) F::decode(p, dmap, rt0 + r, pre[r], scl[r], kFold);
      load_pre(base + G);
#pragma unroll
      for (int j = 0; j < G; ++j) {
        const int i = base + j;
        if (i >= n_units) break;  // uniform over the block
        if (i + AHEAD < n_units) load_w((j + AHEAD) % G, j + AHEAD);
        if constexpr (XS) load_xs(base, j);
        else if (i + XAHEAD < n_units) load_x((j + XAHEAD) % XR, j + XAHEAD);
        float xs[NT][4];  // kFold: sum of the unit's activations per token (D of A = 1)
        if constexpr (kFold) {
          constexpr uint32_t kOne = 0x3F803F80u;  // bf16x2 (1, 1)
          const uint32_t ones[4] = {kOne, kOne, kOne, kOne};
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            xs[nt][0] = xs[nt][1] = xs[nt][2] = xs[nt][3] = 0.0f;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const uint4 xv = xf[j % XR][nt][h];
              mma_bf16_16816(xs[nt], ones, xv.x, xv.y);
              mma_bf16_16816(xs[nt], ones, xv.z, xv.w);
            }
          }
        }
#pragma unroll
        for (int r = 0; r < RT; ++r) {
          if (!rt_ok[r]) continue;
          uint32_t su[F::kScl];
#pragma unroll
          for (int s = 0; s < F::kScl; ++s)
            su[s] = F::lane_uniform(p, s) ? scl[r][s] : __shfl_sync(0xffffffffu, scl[r][s], j, 4);  // lane 4g + j
          float sc[F::kSG][2];
          uint32_t zm[2];
          F::unpack(p, su, sc, zm);
          const uint32_t wd[4] = {wq[j][r].x, wq[j][r].y, wq[j][r].z, wq[j][r].w};
          float d[NT][4];
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            if (h == 0 || kSplitHalves) {
#pragma unroll
              for (int nt = 0; nt < NT; ++nt) d[nt][0] = d[nt][1] = d[nt][2] = d[nt][3] = 0.0f;
            }
#pragma unroll
            for (int ss = 0; ss < 2; ++ss) {
              uint32_t a[4];
              if constexpr (kFold) {
                FmtInt4::codes_raw(wd[2 * h + ss], magic, a);
              } else if (2 * h + ss >= 4 - kRd) {
                reg_codes(wd[2 * h + ss], tl, th, a);
              } else {
                F::codes(wd[2 * h + ss], F::kLut ? lut_lane : magic, zm, a);
              }
#pragma unroll
              for (int nt = 0; nt < NT; ++nt) {
                const uint4 xv = xf[j % XR][nt][h];
                mma_bf16_16816(d[nt], a, ss == 0 ? xv.x : xv.z, ss == 0 ? xv.y : xv.w);
              }
            }
            if (h == 1 || kSplitHalves) {
              const int sg = F::kSG == 2 ? h : 0;
              if (kFold && h == 1) {  // d - (128 + z) * sum(x), once per unit
                const float z0 = __uint_as_float(zm[0]), z1 = __uint_as_float(zm[1]);
#pragma unroll
                for (int nt = 0; nt < NT; ++nt) {
                  d[nt][0] = fmaf(-z0, xs[nt][0], d[nt][0]);
                  d[nt][1] = fmaf(-z0, xs[nt][1], d[nt][1]);
                  d[nt][2] = fmaf(-z1, xs[nt][2], d[nt][2]);
                  d[nt][3] = fmaf(-z1, xs[nt][3], d[nt][3]);
                }
              }
#pragma unroll
              for (int nt = 0; nt < NT; ++nt) {
                acc[r][nt][0] = fmaf(d[nt][0], sc[sg][0], acc[r][nt][0]);
                acc[r][nt][1] = fmaf(d[nt][1], sc[sg][0], acc[r][nt][1]);
                acc[r][nt][2] = fmaf(d[nt][2], sc[sg][1], acc[r][nt][2]);
                acc[r][nt][3] = fmaf(d[nt][3], sc[sg][1], acc[r][nt][3]);
              }
            }
          }
        }
      }
#pragma unroll
      for (int r = 0; r < RT; ++r) wp[r] += G * 512;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) xp[nt] += G * 64;
    }
  }
  if (!p.pdl_early) pdl_trigger();

  if constexpr (KW > 1) {
    // red[warp][value][lane]: the warps of a row-tile group other than its first leave their sums
    // here; the first adds them in warp order.
    constexpr int V = RT * NT * 4;
    __shared__ float red[W * V * 32];
    if (active && wk > 0) {
#pragma unroll
      for (int r = 0; r < RT; ++r)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int c = 0; c < 4; ++c) red[(warp * V + (r * NT + nt) * 4 + c) * 32 + lane] = acc[r][nt][c];
    }
    __syncthreads();
    if (active && wk == 0) {
#pragma unroll
      for (int r = 0; r < RT; ++r)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int c = 0; c < 4; ++c)
            for (int k = 1; k < KW; ++k) acc[r][nt][c] += red[((warp + k) * V + (r * NT + nt) * 4 + c) * 32 + lane];
    }
  }

  if (active && wk == 0) {
    // Each warp writes its own rows: D fragment (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1); with
    // split-K the raw fp32 rows, the epilogue is the merge's.
#pragma unroll
    for (int r = 0; r < RT; ++r)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        if (p.splits == 1) {
          store_fragment(p, rt0 + r, g, nt * 8 + 2 * t, acc[r][nt]);
          continue;
        }
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int row = (rt0 + r) * 16 + g + 8 * (c >> 1), tok = nt * 8 + 2 * t + (c & 1);
          if (row < p.n && tok < p.m) p.ws[static_cast<size_t>(split) * p.m * p.n + static_cast<size_t>(tok) * p.n + row] = acc[r][nt][c];
        }
      }
  }
  if (p.splits == 1) return;

  constexpr int R = W / KW * RT * 16;
  splitk_merge(p, rt_block * 16, R, tid, W * 32, &is_last);
}

}  // namespace nibble::cuda

#include "ops/cuda/gemv_w4_run.cuh"  // the persistent run variant (configurations with `run`)
#include "ops/cuda/gemv_w4_wg.cuh"   // the warpgroup (wgmma) variant (configurations with `wg`)

namespace nibble::cuda {

// ---- host side: the table of instantiations and the launch -------------------------------

template <class F, int I>
constexpr auto gemv_kernel_for() {
  constexpr GemvConfig c = kGemvConfigs[I];
  if constexpr (c.run > 0) {
    static_assert(c.nt == 1, "the run kernel serves M <= 8");
    // With the wide table the ring's slots surround it: the ring must span at least its 64 KB.
    static_assert(c.bulk == 0 || c.wide == 0 || c.bulk * c.warps * 2048 >= 65536, "the wide table sits inside the ring's span");
    return &gemv_w4_run_kernel<F, c.warps, c.ahead, c.xahead, c.run, c.wide, c.bulk>;
  } else if constexpr (c.wg > 0) {
    static_assert(c.warps == 4 * c.wg && c.rt == 1 && c.kw <= 1, "a warpgroup is 4 warps of one row tile each");
    return &gemv_w4_wg_kernel<F, c.nt, c.wg, c.ahead>;
  } else {
    return &gemv_w4_kernel<F, c.nt, c.warps, c.rt, c.ahead, c.xahead, c.chains, c.fold, c.pf, c.rd, c.kw < 1 ? 1 : c.kw,
                           c.xs>;
  }
}
template <class F, size_t... I>
constexpr auto gemv_kernel_table(std::index_sequence<I...>) {
  using K = void (*)(W4KernelParams);
  return std::array<K, sizeof...(I)>{gemv_kernel_for<F, static_cast<int>(I)>()...};
}

// Where the GEMV lets the next kernel launch (programmatic dependent launch): at the start of each
// block, or after its main loop. Measured in a CUDA graph of the 128 GEMVs of a Llama-3-8B decode
// step (docs/kernels.md, item 12): early wins 1-3 % for INT4 and for 4-warp blocks; 8-warp blocks
// with the 33 KB decode table lose 2-4 % with it (late wins). NIBBLE_GEMV_PDL_TRIGGER=early|late
// overrides (A/B runs).
inline int gemv_pdl_early(bool lut, int warps) {
  static const char* env = std::getenv("NIBBLE_GEMV_PDL_TRIGGER");
  if (env != nullptr && std::strcmp(env, "early") == 0) return 1;
  if (env != nullptr && std::strcmp(env, "late") == 0) return 0;
  return lut && warps >= 8 ? 0 : 1;
}

// Checks, picks the configuration and the split count, launches.
template <class F>
Status gemv_w4_launch(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config, W4Epilogue ep) {
  if (m < 1 || m > 32) return Status::unsupported("{}: M must be 1..32, got {}", F::kName, m);
  if (ep != W4Epilogue::kNone && w.n % 16 != 0)
    return Status::invalid("{}: the gated epilogue needs gate/up rows interleaved in tiles of 16, got N = {}", F::kName, w.n);
  if (w.k % 64 != 0) return Status::unsupported("{}: K must be a multiple of 64, got {}", F::kName, w.k);
  if ((reinterpret_cast<uintptr_t>(x) & 15) != 0)
    return Status::invalid("{}: x must be 16-byte aligned", F::kName);
  if (w.n == 0) return Status::ok();
  const int nt = gemv_nt_for(m);
  if (config < 0) config = gemv_default_config(s.info(), w.format, m, w.n, w.k, w.flags);
  if (config >= kGemvConfigCount || kGemvConfigs[config].nt != nt)
    return Status::invalid("{}: configuration {} does not serve M = {}", F::kName, config, m);
  // The run kernel needs whole groups of 4 units per row tile; other K take the v4 kernel's default.
  if (kGemvConfigs[config].run > 0 && w.k % 256 != 0) config = gemv_v4_default_config(s.info(), w.format, m);
  if (!gemv_config_runs_on(config, s.info()))
    return Status::unsupported("{}: configuration {} needs sm_90a (wgmma or the bulk copy engine), this device is sm_{}{}", F::kName, config,
                               s.info().cc_major, s.info().cc_minor);
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
  p.dq = w.dq;
  p.m = m;
  p.n = static_cast<int>(w.n);
  p.k = static_cast<int>(w.k);
  p.n16 = static_cast<int>(w4_n16(w.n));
  p.ku = static_cast<int>(w.k / 64);
  p.flags = w.flags;
  p.glu = static_cast<int>(ep);
  // The run kernel triggers early, as the probe's skeleton (the environment override aside).
  p.pdl_early = c.run > 0 ? gemv_pdl_early(false, 0) : gemv_pdl_early(F::kLut, c.warps);
  if (c.run > 0) return gemv_w4_run_launch<F>(kernel, config, p, s);

  // Resident blocks per SM, asked once per configuration (the query costs microseconds of host
  // time, as much as a small GEMV; one GPU model per process assumed).
  static std::array<std::atomic<int>, kGemvConfigCount> occupancy{};
  std::atomic<int>& occ = occupancy[config];
  int per_sm = occ.load(std::memory_order_relaxed);
  // The staged activations (xs: two stages; wg: two, swizzled, and 1 KB of alignment slack), else 0.
  const size_t smem = c.wg > 0 ? gemv_wg_smem_bytes(c) : gemv_xs_smem_bytes(c);
  if (per_sm == 0) {
    // The decode table is 33 KB a block: let shared memory take the whole carveout, so registers
    // (not the L1 / shared split) bound the resident blocks.
    if (F::kLut || smem > 0) NB_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    if (smem > 0)
      NB_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    NB_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, c.warps * 32, smem));
    if (per_sm == 0) return Status::unsupported("{}: configuration {} cannot run on this device", F::kName, config);
    occ.store(per_sm, std::memory_order_relaxed);
  }
  // Split K across blocks only when the row tiles alone leave the GPU short of one full wave, and
  // keep at least 8 units (two groups) per split. (Choosing the split count to fill the last wave
  // instead was measured worse: it split the gate_up layers, which already ran as one wave, 4-10
  // ways: +3-12 % at M = 1, +34-68 % at M = 32, where the fp32 partials are M * N * 8 bytes per
  // split. docs/kernels.md, item 5.)
  // With kw > 1 the block's warps already split its K range kw ways (still >= 8 units per warp).
  const int kw = std::max(1, c.kw);
  const int blocks_n = static_cast<int>(gemv_v4_row_blocks(c, p.n16));
  const int wave = per_sm * s.info().sm_count;
  int splits = std::max(1, wave / blocks_n);
  splits = std::min({splits, std::max(1, p.ku / (8 * kw)), 32});
  p.splits = splits;
  if (splits > 1) {
    NB_TRY(s.scratch(static_cast<size_t>(splits) * m * w.n * sizeof(float), blocks_n, &p.ws, &p.counters));
  }
  // With PDL (sm_90): this GEMV's blocks may start during the previous kernel and stream their
  // weights while it finishes; they wait for it before reading x (gemv_w4_kernel).
  return launch_pdl(F::kName, kernel, dim3(blocks_n, splits), dim3(c.warps * 32), smem, s, p);
}

}  // namespace nibble::cuda

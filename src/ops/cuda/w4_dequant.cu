// w4_dequant_bf16: the whole packed 4-bit weight as a bf16 matrix [n, k], for the prefill path
// (dequantize once, then one cuBLAS GEMM). Element (r, c) = bf16(w4_packed_value(w, r, c)): the
// code's fp32 value minus the zero point, times the fp32 scale rebuilt the GEMV's way, rounded
// to nearest even. Memory-bound: one read of the packed weight, one write of the bf16 matrix.
//
// One warp per 16-row x 64-column unit (gemv_w4.h): lane (g, t) holds 16 bytes, the codes of
// rows g and g + 8 at columns 32h + 8t .. + 8 of each half h, so each lane writes four 16-byte
// runs and every row's 128 bytes of the unit are written by 8 lanes together.
#include "ops/cuda/common.cuh"
#include "ops/cuda/gemv_w4.h"

namespace nibble::cuda {
namespace {

struct DequantParams {
  const uint8_t* q;       // [n16][ku][32][16]
  const uint8_t* scales;  // format-specific (W4Packed)
  const uint8_t* zeros;   // INT4 zero points or null
  const float* nested;    // NF4 double-quant
  const float* dmap;      // NF4 double-quant [256]
  uint16_t* out;          // [n, k] bf16
  float code[16];
  W4DqParts dq;           // NF4 double-quant: each part's offset, the up rows' nested start
  int64_t n, k;
  int n16, ku;
  uint32_t flags;
  W4Format format;
};

// The fp32 scale and zero of row (rt*16 + g + 8*half) for column half h of unit u.
__device__ __forceinline__ void scale_of(const DequantParams& p, int rt, int u, int g, int half, int h, float& scale,
                                         float& zero) {
  zero = 0.0f;
  const size_t unit = static_cast<size_t>(rt) * p.ku + u;
  switch (p.format) {
    case W4Format::kNf4:
      if (p.flags & kW4DoubleQuant) {
        const uint32_t q2 = __ldg(reinterpret_cast<const uint16_t*>(p.scales) + unit * 8 + g);
        const uint32_t qc = half ? q2 >> 8 : q2 & 0xFF;
        // The nested block and the offset of the row's own part (W4DqParts).
        const float nested = __ldg(p.nested + p.dq.nested_block(p.flags, rt, g, half, u, p.ku));
        scale = __fadd_rn(__fmul_rn(__ldg(p.dmap + qc), nested), p.dq.off[p.dq.part_of(rt)][half]);
      } else if (p.flags & kW4ScaleF16) {
        scale = __half2float(__ldg(reinterpret_cast<const __half*>(p.scales) + (unit * 8 + g) * 2 + half));
      } else {
        scale = __ldg(reinterpret_cast<const float*>(p.scales) + (unit * 8 + g) * 2 + half);
      }
      break;
    case W4Format::kInt4: {
      const size_t grp = static_cast<size_t>(rt) * (p.ku >> 1) + (u >> 1);
      const uint32_t s2 = __ldg(reinterpret_cast<const uint32_t*>(p.scales) + grp * 8 + g);
      const uint32_t sb = half ? s2 >> 16 : s2 & 0xFFFF;
      scale = (p.flags & kW4ScaleF16) ? __half2float(__ushort_as_half(static_cast<unsigned short>(sb)))
                                      : __uint_as_float(sb << 16);
      if (p.flags & kW4HasZeros) {
        const uint32_t z2 = __ldg(reinterpret_cast<const uint16_t*>(p.zeros) + grp * 8 + g);
        zero = static_cast<float>(half ? z2 >> 8 : z2 & 0xFF);
      }
      break;
    }
    case W4Format::kMxfp4: {
      const uint32_t s4 = __ldg(reinterpret_cast<const uint32_t*>(p.scales) + unit * 8 + g);
      const uint32_t e = (s4 >> (8 * (2 * h + half))) & 0xFF;
      scale = __uint_as_float(e == 0 ? 0x00400000u : e == 255 ? 0x7FC00000u : e << 23);
      break;
    }
  }
}

__global__ void __launch_bounds__(256) w4_dequant_kernel(const __grid_constant__ DequantParams p) {
  __shared__ float code[16];
  if (threadIdx.x < 16) code[threadIdx.x] = p.code[threadIdx.x];
  __syncthreads();
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t n_units = static_cast<int64_t>(p.n16) * p.ku;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  const uint64_t pol = evict_first_policy();  // the packed weight is read once
  int64_t unit = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  uint4 next = unit < n_units ? ld_stream_v4(p.q + (unit * 32 + lane) * 16, pol) : make_uint4(0, 0, 0, 0);
  for (; unit < n_units; unit += warps) {
    const int rt = static_cast<int>(unit / p.ku), u = static_cast<int>(unit % p.ku);
    const uint4 qv = next;  // this unit's codes; the next unit's load goes out before the stores
    if (unit + warps < n_units) next = ld_stream_v4(p.q + ((unit + warps) * 32 + lane) * 16, pol);
    const uint32_t w[4] = {qv.x, qv.y, qv.z, qv.w};
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t row = static_cast<int64_t>(rt) * 16 + g + 8 * half;
      if (row >= p.n) continue;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float scale, zero;
        scale_of(p, rt, u, g, half, h, scale, zero);
        // byte 4s + r, s = 2h + ss: row g + 8 (r & 1), columns 4ss + 2 (r >> 1) (+1: high nibble)
        uint32_t o[4];
#pragma unroll
        for (int ss = 0; ss < 2; ++ss)
#pragma unroll
          for (int rr = 0; rr < 2; ++rr) {
            const uint32_t b = (w[2 * h + ss] >> (8 * (2 * rr + half))) & 0xFF;
            const float lo = (code[b & 15] - zero) * scale, hi = (code[b >> 4] - zero) * scale;
            o[2 * ss + rr] = pack_bf16x2(lo, hi);
          }
        uint4* dst = reinterpret_cast<uint4*>(p.out + row * p.k + static_cast<int64_t>(u) * 64 + 32 * h + 8 * t);
        __stcs(dst, make_uint4(o[0], o[1], o[2], o[3]));  // streamed out: the GEMM reads it next from L2 at best
      }
    }
  }
}

}  // namespace

Status w4_dequant_bf16(const W4Device& w, uint16_t* out, Stream& s) {
  if (w.k % 64 != 0) return Status::unsupported("w4_dequant_bf16: K must be a multiple of 64, got {}", w.k);
  if ((reinterpret_cast<uintptr_t>(out) & 15) != 0)
    return Status::invalid("w4_dequant_bf16: out must be 16-byte aligned");
  if (w.n == 0) return Status::ok();
  DequantParams p{};
  p.q = w.q.get();
  p.scales = w.scales.get();
  p.zeros = w.zeros.get();
  p.nested = w.nested.get();
  p.dmap = w.dmap.size() ? w.dmap.get() : nullptr;
  p.out = out;
  for (int i = 0; i < 16; ++i) p.code[i] = w.code[i];
  p.dq = w.dq;
  p.n = w.n;
  p.k = w.k;
  p.n16 = static_cast<int>(w4_n16(w.n));
  p.ku = static_cast<int>(w.k / 64);
  p.flags = w.flags;
  p.format = w.format;
  if ((p.flags & kW4DoubleQuant) && (p.nested == nullptr || p.dmap == nullptr))
    return Status::invalid("w4_dequant_bf16: double-quantized NF4 without nested absmax / map");
  // Enough warps to keep every SM's memory pipe full; each warp loops over units.
  const int64_t n_units = static_cast<int64_t>(p.n16) * p.ku;
  const int64_t want = (n_units + 7) / 8;
  const int blocks = static_cast<int>(std::min<int64_t>(want, static_cast<int64_t>(s.info().sm_count) * 4));
  return launch("w4_dequant_bf16", w4_dequant_kernel, dim3(blocks), dim3(256), 0, s.get(), p);
}

}  // namespace nibble::cuda

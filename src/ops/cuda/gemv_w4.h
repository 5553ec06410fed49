// 4-bit weight GEMV / skinny GEMM on the GPU: y[m, :] = x[m, :] @ W^T for m < M <= 32, with W
// [N, K] stored in one of three 4-bit formats, bf16 activations in and out, fp32 accumulation.
//
// Each format is repacked once, at load, from its canonical layout (src/quant) into the layout
// the kernel streams (docs/kernels.md draws it):
//
//   q       [N16][KU][32 lanes][16 bytes]   N16 = ceil(N / 16) row tiles, KU = K / 64 units.
//           One 16-row x 64-column unit is 512 contiguous bytes: one coalesced 16-byte load per
//           lane. Lane (g = lane / 4, t = lane % 4) holds rows g and g + 8; inside a unit the 64
//           columns are permuted so that its bytes are the A fragments of four m16n8k16 MMAs and
//           its activations are two 16-byte runs, x[64u + 32h + 8t .. + 8) for h = 0, 1.
//           Byte 4s + r (k-step s = 2h + ss, register r): row g + 8 (r & 1), columns
//           c = 64u + 32h + 8t + 4ss + 2 (r >> 1) (low nibble) and c + 1 (high nibble).
//   scales  per (row tile, unit or group, g): both rows' scales in one word (see W4Packed).
//
// The 4-bit code's value comes from a 16-entry table (NF4 codebook, INT4 integers, E2M1 values):
// NF4 and MXFP4 blocks expand it into a byte -> bf16x2 table in shared memory; INT4 decodes by
// arithmetic (the code ORed into the mantissa of bf16 128.0, minus 128 + zero).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "ops/cuda/device.h"
#include "quant/int4.h"

namespace nibble::cuda {

enum class W4Format : uint8_t { kNf4, kInt4, kMxfp4 };
const char* w4_format_name(W4Format f);

// Flags the kernel reads (uniform per launch).
enum W4Flags : uint32_t {
  kW4DoubleQuant = 1,  // NF4: absmax as uint8 codes + nested fp32 absmax + offset
  kW4ScaleF16 = 2,     // INT4: scales are fp16 bits (else bf16 bits); NF4: absmax as fp16 (else fp32)
  kW4HasZeros = 4,     // INT4: per-group zero points (else symmetric, zero 8)
  kW4NestedGlu = 8,    // NF4 double-quant, gate|up interleaved by 8: nested indexed per part (W4DqParts)
};

// How NF4 absmax sit on the device (docs/gpu_backend.md, "NF4 absmax"): fp16 (2 bytes a block of
// 64, rounded: the fastest GEMV), fp32 (4 bytes, exactly the file's or the double quantization's
// values), or a double-quantized file's 1-byte codes kept (1 byte + the nested absmax; decodes
// slowest). A weight whose absmax do not fit fp16 keeps fp32.
enum class Nf4Absmax { kFp16, kFp32, kNested };

// Where the parts of a double-quantized NF4 weight lie, so that a fused q/k/v or gate|up weight
// keeps each checkpoint tensor's own offset (bitsandbytes stores one per tensor) and nested absmax.
//   * Row tile rt belongs to part #{i : rt >= end_rt[i]} (stacked parts end on whole tiles);
//     rows g and g + 8 of a tile add off[part][0] and off[part][1] (different only when gate and
//     up rows are interleaved by 8, where part 0 is the pair).
//   * The nested absmax of packed (row, unit u) is nested[(row * KU + u) >> 8]: the parts' arrays
//     end to end, which needs every part but the last to fill whole nested blocks. With
//     kW4NestedGlu the rows are gate/up interleaved and the index is that of the part's own row,
//     (part_row * KU + u) >> 8 with part_row = 8 * rt + g, plus nested_hi for the up rows.
// Compiled for the kernels too (nvcc), plain C++ elsewhere.
#if defined(__CUDACC__)
#define NB_W4_HOST_DEVICE __host__ __device__
#else
#define NB_W4_HOST_DEVICE
#endif
inline constexpr int kW4MaxParts = 4;
struct W4DqParts {
  int32_t end_rt[kW4MaxParts - 1] = {INT32_MAX, INT32_MAX, INT32_MAX};
  float off[kW4MaxParts][2] = {};
  int32_t nested_hi = 0;
  // One tensor: one offset everywhere.
  static W4DqParts single(float offset) {
    W4DqParts d;
    for (auto& o : d.off) o[0] = o[1] = offset;
    return d;
  }
  NB_W4_HOST_DEVICE int part_of(int rt) const {
    int pi = 0;
    for (int i = 0; i < kW4MaxParts - 1; ++i) pi += rt >= end_rt[i];
    return pi;
  }
  // The nested absmax of packed row rt * 16 + g + 8 * half, unit u of ku (`flags`: the weight's).
  NB_W4_HOST_DEVICE int64_t nested_block(uint32_t flags, int64_t rt, int g, int half, int64_t u, int64_t ku) const {
    return (flags & kW4NestedGlu) ? half * nested_hi + (((rt * 8 + g) * ku + u) >> 8)
                                  : ((rt * 16 + g + 8 * half) * ku + u) >> 8;
  }
};

// A repacked weight on the host (the output of the pack_* functions, the input of upload).
struct W4Packed {
  W4Format format = W4Format::kNf4;
  int64_t n = 0, k = 0;  // out_features, in_features
  uint32_t flags = 0;
  std::array<float, 16> code{};  // value of each 4-bit code before scaling
  std::vector<uint8_t> q;        // [N16][KU][32][16]
  // NF4:   fp32 absmax: float2 [N16][KU][8]  (row g, row g + 8)
  //        fp16 absmax (kW4ScaleF16): half2 [N16][KU][8], the same order
  //        double-quant: uint16 [N16][KU][8] (low byte row g, high byte row g + 8)
  // INT4:  uint32 [N16][K/128][8]   (low half row g, high half row g + 8; fp16 or bf16 bits)
  // MXFP4: uint32 [N16][KU][8]      bytes (row g, 2u), (g + 8, 2u), (g, 2u + 1), (g + 8, 2u + 1)
  std::vector<uint8_t> scales;
  std::vector<uint8_t> zeros;     // INT4 with zero points: uint16 [N16][K/128][8]
  std::vector<float> nested;      // NF4 double-quant: nested absmax per 256 blocks (padded)
  std::vector<float> dmap;        // NF4 double-quant: the 256-entry dynamic map
  W4DqParts dq;                   // NF4 double-quant: each part's offset (the mean added back)
  // Bytes a GEMV must read for the weight (codes + scales + zeros + nested), unpadded: the
  // format's own size, used for the roofline floor.
  size_t stream_bytes = 0;
};

int64_t w4_n16(int64_t n);

// NF4 as bitsandbytes stores it: `packed` [ceil(n*k/2)] (element e = r*k + c in byte e/2, HIGH
// nibble when e is even), blocks of `blocksize` consecutive elements.
Result<W4Packed> pack_nf4(const uint8_t* packed, int64_t n, int64_t k, int blocksize,
                          const float* absmax /* [n*k/blocksize] */);
Result<W4Packed> pack_nf4_double_quant(const uint8_t* packed, int64_t n, int64_t k, int blocksize,
                                       const uint8_t* absmax_q /* [n*k/blocksize] */,
                                       const float* nested_absmax, int nested_blocksize,
                                       float offset, const float* code256);
// INT4 w4a16 with group 128, symmetric or with zero points (quant/int4.h layout).
Result<W4Packed> pack_int4(const quant::Int4Data& d);
// MXFP4 (quant/mxfp4.h layout): packed [n, k/2] low nibble first, E8M0 scales [n, k/32].
Result<W4Packed> pack_mxfp4(const uint8_t* packed, const uint8_t* scales, int64_t n, int64_t k);

// Reads element (r, c) back out of the packed layout, in fp32, as the kernel defines it
// (code value * scale; for NF4 double-quant the scale is rebuilt the kernel's way). For tests.
float w4_packed_value(const W4Packed& w, int64_t r, int64_t c);
// NF4: the absmax of row rt * 16 + g + 8 * half over unit u (columns [64u, 64u + 64)), as the
// kernel computes it (fp32 as stored, or rebuilt from the double quantization).
float w4_nf4_absmax(const W4Packed& w, int64_t rt, int64_t u, int g, int half);

// The packed weight on the device.
struct W4Device {
  W4Format format = W4Format::kNf4;
  int64_t n = 0, k = 0;
  uint32_t flags = 0;
  std::array<float, 16> code{};
  W4DqParts dq;
  size_t stream_bytes = 0;
  DeviceBuffer<uint8_t> q, scales, zeros;
  DeviceBuffer<float> nested, dmap;
};
Result<W4Device> upload(const W4Packed& w, Stream& s);

// What the GEMV does with each output before writing it. kNone: y [m, n] = x @ W^T. The gated
// ones expect W's rows gate/up interleaved by 8 (w4_interleave_glu: row tile j = gate rows
// [8j, 8j + 8), then up rows [8j, 8j + 8)), so that each lane holds a gate output and its up
// output; they write y [m, n / 2] = act(gate) * up, both rounded to bf16 first (exactly what the
// unfused GEMV + act_mul_fused compute), and need n % 16 == 0.
enum class W4Epilogue : uint8_t { kNone, kSiluMul, kGeluTanhMul };

// y [m, n] = x [m, k] @ W^T, bf16 (raw bits) in and out; 1 <= m <= 32. `config` < 0 picks the
// kernel configuration for this device and M from the table in gemv_w4.cuh; otherwise it forces
// entry `config` (the benchmark sweeps them). x and y must be 16-byte aligned.
Status gemv_nf4(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config = -1,
                W4Epilogue ep = W4Epilogue::kNone);
Status gemv_int4(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config = -1,
                 W4Epilogue ep = W4Epilogue::kNone);
Status gemv_mxfp4(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config = -1,
                  W4Epilogue ep = W4Epilogue::kNone);
// Whichever of the three the weight's format names.
Status gemv_w4(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config = -1,
               W4Epilogue ep = W4Epilogue::kNone);

// The whole weight dequantized, for the prefill path (one bf16 GEMM instead of many GEMVs):
// out [n, k] bf16 bits, row-major; element (r, c) = bf16 (round to nearest even) of
// w4_packed_value(packed, r, c) computed on the GPU the same way. out must be 16-byte aligned.
// Memory-bound (one read of the packed weight, one write of the bf16 matrix).
Status w4_dequant_bf16(const W4Device& w, uint16_t* out, Stream& s);

// The configuration table, for the benchmark: how many entries, whether entry i serves m rows,
// and a one-line description.
int gemv_config_count();
bool gemv_config_fits(int config, int m);
std::string gemv_config_name(int config);
// Whether entry i can run on this device (the warpgroup and bulk-copy entries need sm_90a: H100 / H200).
bool gemv_config_runs_on(int config, const DeviceInfo& d);
int gemv_default_config(const DeviceInfo& d, int m, int64_t n, int64_t k);  // NF4's
// The configuration the GEMV picks for this format (and the weight's W4Flags) when `config` < 0.
int gemv_default_config(const DeviceInfo& d, W4Format f, int m, int64_t n, int64_t k, uint32_t flags = 0);
// Whether the default at this shape is the persistent run kernel (sm_90; w4_pack.cpp says where).
bool gemv_run_wanted(const DeviceInfo& d, W4Format f, int m, int64_t n, int64_t k);
// Whether the default at this shape is the warpgroup (wgmma) kernel (sm_90a, 17-32 rows).
bool gemv_wg_wanted(const DeviceInfo& d, int m, int64_t n, int64_t k);
// The v4 kernel's default for the format and M (never a run configuration): where K does not
// allow the run kernel.
int gemv_v4_default_config(const DeviceInfo& d, W4Format f, int m);

}  // namespace nibble::cuda

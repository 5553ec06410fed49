// Repacking the three 4-bit formats from their canonical layouts into the GEMV layout
// (gemv_w4.h), reading it back for tests, upload, and the host side of the configuration table.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/dtype.h"
#include "ops/cuda/gemv_config.h"
#include "ops/cuda/gemv_w4.h"
#include "quant/minifloat.h"
#include "quant/nf4.h"

namespace nibble::cuda {
namespace {

constexpr int kUnit = 64;

// Fills q [N16][KU][32][16] from nib(row, col) (0 for rows past n).
template <class Nib>
std::vector<uint8_t> pack_codes(int64_t n, int64_t k, Nib nib) {
  const int64_t n16 = w4_n16(n), ku = k / kUnit;
  std::vector<uint8_t> q(static_cast<size_t>(n16 * ku * 512), 0);
  for (int64_t rt = 0; rt < n16; ++rt)
    for (int64_t u = 0; u < ku; ++u) {
      uint8_t* unit = q.data() + (rt * ku + u) * 512;
      for (int lane = 0; lane < 32; ++lane) {
        const int g = lane >> 2, t = lane & 3;
        for (int bi = 0; bi < 16; ++bi) {
          const int s = bi >> 2, r = bi & 3, h = s >> 1, ss = s & 1;
          const int64_t row = rt * 16 + g + 8 * (r & 1);
          if (row >= n) continue;
          const int64_t c = u * kUnit + 32 * h + 8 * t + 4 * ss + 2 * (r >> 1);
          unit[lane * 16 + bi] = static_cast<uint8_t>(nib(row, c) | (nib(row, c + 1) << 4));
        }
      }
    }
  return q;
}

// Inverse of pack_codes' byte placement: the code of (row, col).
int packed_code(const W4Packed& w, int64_t row, int64_t c) {
  const int64_t ku = w.k / kUnit, rt = row / 16, rr = row % 16, u = c / kUnit, cc = c % kUnit;
  const int h = static_cast<int>(cc / 32), t = static_cast<int>((cc % 32) / 8), ss = static_cast<int>((cc % 8) / 4);
  const int r = static_cast<int>(((cc % 4) / 2) * 2 + (rr >= 8)), e = static_cast<int>(cc % 2);
  const int g = static_cast<int>(rr % 8);
  const uint8_t b = w.q[(rt * ku + u) * 512 + (g * 4 + t) * 16 + (2 * h + ss) * 4 + r];
  return e ? b >> 4 : b & 0xF;
}

void put_u16(std::vector<uint8_t>& v, size_t i, uint16_t x) { std::memcpy(v.data() + 2 * i, &x, 2); }
void put_u32(std::vector<uint8_t>& v, size_t i, uint32_t x) { std::memcpy(v.data() + 4 * i, &x, 4); }
uint16_t get_u16(const std::vector<uint8_t>& v, size_t i) { uint16_t x; std::memcpy(&x, v.data() + 2 * i, 2); return x; }
uint32_t get_u32(const std::vector<uint8_t>& v, size_t i) { uint32_t x; std::memcpy(&x, v.data() + 4 * i, 4); return x; }

Status check_nf4(int64_t n, int64_t k, int blocksize) {
  if (n <= 0 || k <= 0) return Status::invalid("gemv_nf4: empty weight [{}, {}]", n, k);
  if (blocksize != 64) return Status::unsupported("gemv_nf4: blocksize must be 64, got {}", blocksize);
  if (k % kUnit != 0) return Status::unsupported("gemv_nf4: K must be a multiple of 64, got {}", k);
  return Status::ok();
}

// bnb: element e in byte e/2, HIGH nibble when e is even.
auto bnb_nib(const uint8_t* packed, int64_t k) {
  return [packed, k](int64_t row, int64_t c) {
    const int64_t e = row * k + c;
    const uint8_t b = packed[e >> 1];
    return (e & 1) ? (b & 0xF) : (b >> 4);
  };
}

// The part both NF4 layouts share: the checked shape, the codebook and the packed codes.
Result<W4Packed> pack_nf4_codes(const uint8_t* packed, int64_t n, int64_t k, int blocksize) {
  NB_TRY(check_nf4(n, k, blocksize));
  W4Packed w;
  w.format = W4Format::kNf4;
  w.n = n;
  w.k = k;
  const auto& code = quant::bnb4_code(quant::Bnb4Type::kNf4);
  std::copy(code.begin(), code.end(), w.code.begin());
  w.q = pack_codes(n, k, bnb_nib(packed, k));
  return w;
}

}  // namespace

int64_t w4_n16(int64_t n) { return (n + 15) / 16; }

const char* w4_format_name(W4Format f) {
  switch (f) {
    case W4Format::kNf4: return "nf4";
    case W4Format::kInt4: return "int4";
    case W4Format::kMxfp4: return "mxfp4";
  }
  return "?";
}

Result<W4Packed> pack_nf4(const uint8_t* packed, int64_t n, int64_t k, int blocksize, const float* absmax) {
  NB_ASSIGN_OR_RETURN(W4Packed w, pack_nf4_codes(packed, n, k, blocksize));
  const int64_t n16 = w4_n16(n), ku = k / kUnit;
  w.scales.assign(static_cast<size_t>(n16 * ku * 8 * 8), 0);
  for (int64_t rt = 0; rt < n16; ++rt)
    for (int64_t u = 0; u < ku; ++u)
      for (int g = 0; g < 8; ++g)
        for (int half = 0; half < 2; ++half) {
          const int64_t row = rt * 16 + g + 8 * half;
          const float a = row < n ? absmax[row * ku + u] : 0.0f;
          std::memcpy(w.scales.data() + (((rt * ku + u) * 8 + g) * 2 + half) * 4, &a, 4);
        }
  w.stream_bytes = static_cast<size_t>(n * k / 2 + n * ku * 4);
  return w;
}

Result<W4Packed> pack_nf4_double_quant(const uint8_t* packed, int64_t n, int64_t k, int blocksize,
                                       const uint8_t* absmax_q, const float* nested_absmax,
                                       int nested_blocksize, float offset, const float* code256) {
  NB_TRY(check_nf4(n, k, blocksize));  // a bad shape is reported before a bad nested blocksize
  if (nested_blocksize != 256)
    return Status::unsupported("gemv_nf4: nested blocksize must be 256, got {}", nested_blocksize);
  NB_ASSIGN_OR_RETURN(W4Packed w, pack_nf4_codes(packed, n, k, blocksize));
  w.flags = kW4DoubleQuant;
  const int64_t n16 = w4_n16(n), ku = k / kUnit;
  w.scales.assign(static_cast<size_t>(n16 * ku * 8 * 2), 0);
  for (int64_t rt = 0; rt < n16; ++rt)
    for (int64_t u = 0; u < ku; ++u)
      for (int g = 0; g < 8; ++g) {
        const int64_t r0 = rt * 16 + g, r1 = r0 + 8;
        const uint16_t lo = r0 < n ? absmax_q[r0 * ku + u] : 0, hi = r1 < n ? absmax_q[r1 * ku + u] : 0;
        put_u16(w.scales, (rt * ku + u) * 8 + g, static_cast<uint16_t>(lo | (hi << 8)));
      }
  // Padded rows index past the real nested array: repeat its last value there.
  const int64_t n_blocks = n * ku, n_nested = (n_blocks + 255) / 256;
  const int64_t n_nested_padded = (n16 * 16 * ku + 255) / 256;
  w.nested.assign(nested_absmax, nested_absmax + n_nested);
  w.nested.resize(static_cast<size_t>(n_nested_padded), nested_absmax[n_nested - 1]);
  w.dmap.assign(code256, code256 + 256);
  w.dq = W4DqParts::single(offset);
  w.stream_bytes = static_cast<size_t>(n * k / 2 + n_blocks + n_nested * 4);
  return w;
}

Result<W4Packed> pack_int4(const quant::Int4Data& d) {
  const int64_t n = d.rows, k = d.cols;
  if (n <= 0 || k <= 0) return Status::invalid("gemv_int4: empty weight [{}, {}]", n, k);
  if (d.group_size != 128) return Status::unsupported("gemv_int4: group size must be 128, got {}", d.group_size);
  if (k % 128 != 0) return Status::unsupported("gemv_int4: K must be a multiple of 128, got {}", k);
  if (!d.g_idx.empty()) return Status::unsupported("gemv_int4: act-order (g_idx) weights are not supported");
  W4Packed w;
  w.format = W4Format::kInt4;
  w.n = n;
  w.k = k;
  const bool has_zeros = std::any_of(d.zeros.begin(), d.zeros.end(), [](uint8_t z) { return z != 8; });
  // Scales travel as 16 bits: whichever of bf16 / fp16 holds every one of them exactly.
  const bool bf16_ok = std::all_of(d.scales.begin(), d.scales.end(), [](float s) { return bf16_to_f32(f32_to_bf16(s)) == s; });
  const bool f16_ok = std::all_of(d.scales.begin(), d.scales.end(), [](float s) { return f16_to_f32(f32_to_f16(s)) == s; });
  if (!bf16_ok && !f16_ok) return Status::unsupported("gemv_int4: scales are neither exact bf16 nor exact fp16");
  w.flags = (has_zeros ? kW4HasZeros : 0u) | (bf16_ok ? 0u : kW4ScaleF16);
  for (int c = 0; c < 16; ++c) w.code[c] = static_cast<float>(has_zeros ? c : c - 8);
  const int64_t rb = (k + 1) / 2;
  w.q = pack_codes(n, k, [&](int64_t row, int64_t c) {
    const uint8_t b = d.codes[row * rb + c / 2];
    return (c & 1) ? (b >> 4) : (b & 0xF);
  });
  const int64_t n16 = w4_n16(n), ng = k / 128;
  w.scales.assign(static_cast<size_t>(n16 * ng * 8 * 4), 0);
  if (has_zeros) w.zeros.assign(static_cast<size_t>(n16 * ng * 8 * 2), 0);
  auto bits = [&](float s) -> uint32_t { return bf16_ok ? f32_to_bf16(s) : f32_to_f16(s); };
  for (int64_t rt = 0; rt < n16; ++rt)
    for (int64_t gi = 0; gi < ng; ++gi)
      for (int g = 0; g < 8; ++g) {
        const int64_t r0 = rt * 16 + g, r1 = r0 + 8;
        const uint32_t s0 = r0 < n ? bits(d.scales[r0 * d.n_groups + gi]) : 0;
        const uint32_t s1 = r1 < n ? bits(d.scales[r1 * d.n_groups + gi]) : 0;
        put_u32(w.scales, (rt * ng + gi) * 8 + g, s0 | (s1 << 16));
        if (has_zeros) {
          const uint16_t z0 = r0 < n ? d.zeros[r0 * d.n_groups + gi] : 0;
          const uint16_t z1 = r1 < n ? d.zeros[r1 * d.n_groups + gi] : 0;
          put_u16(w.zeros, (rt * ng + gi) * 8 + g, static_cast<uint16_t>(z0 | (z1 << 8)));
        }
      }
  w.stream_bytes = static_cast<size_t>(n * k / 2 + n * ng * 2 + (has_zeros ? n * ng : 0));
  return w;
}

Result<W4Packed> pack_mxfp4(const uint8_t* packed, const uint8_t* scales, int64_t n, int64_t k) {
  if (n <= 0 || k <= 0) return Status::invalid("gemv_mxfp4: empty weight [{}, {}]", n, k);
  if (k % kUnit != 0) return Status::unsupported("gemv_mxfp4: K must be a multiple of 64, got {}", k);
  W4Packed w;
  w.format = W4Format::kMxfp4;
  w.n = n;
  w.k = k;
  for (int c = 0; c < 16; ++c) w.code[c] = quant::e2m1_decode(static_cast<uint8_t>(c));
  w.q = pack_codes(n, k, [&](int64_t row, int64_t c) {
    const uint8_t b = packed[row * (k / 2) + c / 2];
    return (c & 1) ? (b >> 4) : (b & 0xF);
  });
  const int64_t n16 = w4_n16(n), ku = k / kUnit, nb = k / 32;
  w.scales.assign(static_cast<size_t>(n16 * ku * 8 * 4), 0);
  for (int64_t rt = 0; rt < n16; ++rt)
    for (int64_t u = 0; u < ku; ++u)
      for (int g = 0; g < 8; ++g) {
        const int64_t r0 = rt * 16 + g, r1 = r0 + 8;
        auto e = [&](int64_t row, int64_t blk) -> uint32_t { return row < n ? scales[row * nb + blk] : 127u; };
        put_u32(w.scales, (rt * ku + u) * 8 + g,
                e(r0, 2 * u) | (e(r1, 2 * u) << 8) | (e(r0, 2 * u + 1) << 16) | (e(r1, 2 * u + 1) << 24));
      }
  w.stream_bytes = static_cast<size_t>(n * k / 2 + n * nb);
  return w;
}

float w4_nf4_absmax(const W4Packed& w, int64_t rt, int64_t u, int g, int half) {
  const int64_t ku = w.k / kUnit;
  if (w.flags & kW4ScaleF16) return f16_to_f32(get_u16(w.scales, ((rt * ku + u) * 8 + g) * 2 + half));
  if (!(w.flags & kW4DoubleQuant)) {
    float a;
    std::memcpy(&a, w.scales.data() + (((rt * ku + u) * 8 + g) * 2 + half) * 4, 4);
    return a;
  }
  const uint16_t q2 = get_u16(w.scales, (rt * ku + u) * 8 + g);
  const uint8_t q = half ? q2 >> 8 : q2 & 0xFF;
  // The nested block and the offset of the row's own part (W4DqParts), two roundings, as the kernel.
  volatile float v = w.dmap[q] * w.nested[w.dq.nested_block(w.flags, rt, g, half, u, ku)];
  return v + w.dq.off[w.dq.part_of(static_cast<int>(rt))][half];
}

float w4_packed_value(const W4Packed& w, int64_t r, int64_t c) {
  const int code = packed_code(w, r, c);
  const int64_t ku = w.k / kUnit, rt = r / 16, rr = r % 16, g = rr % 8, half = rr / 8, u = c / kUnit;
  float scale = 0, zero = 0;
  switch (w.format) {
    case W4Format::kNf4: scale = w4_nf4_absmax(w, rt, u, static_cast<int>(g), static_cast<int>(half)); break;
    case W4Format::kInt4: {
      const int64_t ng = w.k / 128, gi = c / 128;
      const uint32_t s2 = get_u32(w.scales, (rt * ng + gi) * 8 + g);
      const uint16_t sb = static_cast<uint16_t>(half ? s2 >> 16 : s2 & 0xFFFF);
      scale = (w.flags & kW4ScaleF16) ? f16_to_f32(sb) : bf16_to_f32(sb);
      if (w.flags & kW4HasZeros) {
        const uint16_t z2 = get_u16(w.zeros, (rt * ng + gi) * 8 + g);
        zero = static_cast<float>(half ? z2 >> 8 : z2 & 0xFF);
      }
      break;
    }
    case W4Format::kMxfp4: {
      const uint32_t s4 = get_u32(w.scales, (rt * ku + u) * 8 + g);
      const int hh = static_cast<int>((c % kUnit) / 32);
      scale = quant::e8m0_decode(static_cast<uint8_t>(s4 >> (8 * (2 * hh + half))));
      break;
    }
  }
  return (w.code[code] - zero) * scale;
}

Result<W4Device> upload(const W4Packed& w, Stream& s) {
  W4Device d;
  d.format = w.format;
  d.n = w.n;
  d.k = w.k;
  d.flags = w.flags;
  d.code = w.code;
  d.dq = w.dq;
  d.stream_bytes = w.stream_bytes;
  NB_ASSIGN_OR_RETURN(d.q, DeviceBuffer<uint8_t>::create(s, w.q.size()));
  NB_ASSIGN_OR_RETURN(d.scales, DeviceBuffer<uint8_t>::create(s, w.scales.size()));
  NB_TRY(s.upload(d.q.get(), w.q.data(), w.q.size()));
  NB_TRY(s.upload(d.scales.get(), w.scales.data(), w.scales.size()));
  if (!w.zeros.empty()) {
    NB_ASSIGN_OR_RETURN(d.zeros, DeviceBuffer<uint8_t>::create(s, w.zeros.size()));
    NB_TRY(s.upload(d.zeros.get(), w.zeros.data(), w.zeros.size()));
  }
  if (!w.nested.empty()) {
    NB_ASSIGN_OR_RETURN(d.nested, DeviceBuffer<float>::create(s, w.nested.size()));
    NB_TRY(s.upload(d.nested.get(), w.nested.data(), w.nested.size() * sizeof(float)));
    NB_ASSIGN_OR_RETURN(d.dmap, DeviceBuffer<float>::create(s, w.dmap.size()));
    NB_TRY(s.upload(d.dmap.get(), w.dmap.data(), w.dmap.size() * sizeof(float)));
  }
  NB_TRY(s.sync());  // the host vectors may go away after this returns
  return d;
}

Status gemv_w4(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config, W4Epilogue ep) {
  switch (w.format) {
    case W4Format::kNf4: return gemv_nf4(w, x, m, y, s, config, ep);
    case W4Format::kInt4: return gemv_int4(w, x, m, y, s, config, ep);
    case W4Format::kMxfp4: return gemv_mxfp4(w, x, m, y, s, config, ep);
  }
  return Status::internal("gemv_w4: unknown format");
}

int gemv_config_count() { return kGemvConfigCount; }
bool gemv_config_fits(int config, int m) {
  return config >= 0 && config < kGemvConfigCount && kGemvConfigs[config].nt == gemv_nt_for(m);
}
bool gemv_config_runs_on(int config, const DeviceInfo& d) {
  if (config < 0 || config >= kGemvConfigCount) return false;
  const GemvConfig& c = kGemvConfigs[config];  // wgmma and the bulk copy engine: sm_90 only
  return (c.wg == 0 && c.bulk == 0) || (d.cc_major == 9 && d.cc_minor == 0);
}
std::string gemv_config_name(int config) {
  const GemvConfig& c = kGemvConfigs[config];
  if (c.run > 0)
    return fmt::format("nt{}_w{}_a{}_x{}_run{}{}{}", c.nt, c.warps, c.ahead, c.xahead, c.run, c.wide ? "_wide" : "",
                       c.bulk ? fmt::format("_bulk{}", c.bulk) : "");
  if (c.wg > 0) return fmt::format("nt{}_w{}_a{}_wg", c.nt, c.warps, c.ahead);
  return fmt::format("nt{}_w{}_rt{}_a{}_x{}_c{}{}{}{}{}{}", c.nt, c.warps, c.rt, c.ahead, c.xahead, c.chains, c.fold ? "_fold" : "",
                     c.pf ? fmt::format("_pf{}", c.pf) : "", c.rd ? fmt::format("_rd{}", c.rd) : "",
                     c.kw > 1 ? fmt::format("_kw{}", c.kw) : "", c.xs ? "_xs" : "");
}
int gemv_default_config(const DeviceInfo& d, W4Format f, int m, int64_t n, int64_t k, uint32_t flags) {
  // NIBBLE_GEMV_CONFIG=i forces table entry i wherever it serves M (tuning the engine end to end
  // without a rebuild); other M keep their defaults.
  static const int forced = [] {
    const char* e = std::getenv("NIBBLE_GEMV_CONFIG");
    return e ? std::atoi(e) : -1;
  }();
  if (forced >= 0 && gemv_config_fits(forced, m)) return forced;
  // The persistent run kernel (below): entry 58, one 16-warp block a SM with the wide decode table
  // (session 10: GEMV M = 1 NF4 0.538 -> 0.544, MXFP4 0.527 -> 0.548 against entry 48's two 8-warp
  // blocks; batch 1 NF4 441.4 -> 443.6 tok/s, MXFP4 411 -> 416). NIBBLE_GEMV_RUN_CONFIG=i takes run
  // entry i instead (A/B runs; INT4 takes the run kernel only when forced).
  static const int run_entry = [] {
    const char* e = std::getenv("NIBBLE_GEMV_RUN_CONFIG");
    const int i = e ? std::atoi(e) : -1;
    return i > 0 && i < kGemvConfigCount && kGemvConfigs[i].run > 0 ? i : 58;
  }();
  if (d.hopper() && gemv_run_wanted(d, f, m, n, k)) return run_entry;
  if (gemv_wg_wanted(d, m, n, k)) return 51;  // the warpgroup (wgmma) kernel at 17-32 rows (below)
  // INT4 and MXFP4 at one row on sm_90, every layer but the wide gate|up ones (N >= 3K): entry 5
  // (4 warps, weights 3 and activations 2 units ahead, no K split in the block). In the session-3
  // sweep it was the best single choice for those shapes (INT4 geomean 0.526 -> 0.564, MXFP4
  // 0.515 -> 0.542; bench/results/gemv_NVIDIA-H200_2026-11-21_s3.json); docs/kernels.md has the
  // re-measurement.
  if (d.hopper() && m == 1 && f != W4Format::kNf4 && n < 3 * k) return 5;
  // NF4 with fp16 absmax (FmtNf4h) at 9-16 rows: entry 44 (8 warps, 2 row tiles x 4 K ranges).
  // Session 13, batch 16 end to end with each M <= 16 entry forced, two rounds on one H200: 44
  // 4,351 / 4,353 tok/s against 4,256 / 4,251 for 45 (the fp32 form's choice, session 7), 14
  // 4,244-4,248, 46 4,150, 26 4,113, 43 4,085-4,092, 13 3,983-3,986.
  if (d.hopper() && f == W4Format::kNf4 && (flags & kW4ScaleF16) && gemv_nt_for(m) == 2) return 44;
  return gemv_v4_default_config(d, f, m);
}
// The persistent run kernel (entry 58; 48 until session 10) for NF4 and MXFP4 on the large layers, where it streams
// closer to the floor than the v4 kernel: N * K >= 100 M at one row (the gate|up layers and the
// larger down layers), >= 40 M at 2-8 rows. On smaller layers its tail (the cut tiles' merge)
// costs more than it saves, and INT4 (no table lookups) runs faster on the v4 kernel's 32 warps
// per SM everywhere. Chosen from one H200 sweep (bench/results/gemv_run_*_NVIDIA-H200_2026-11-21*,
// docs/kernels.md "Session 4"). NIBBLE_GEMV_RUN=0 turns it off (A/B runs).
// Also at one row wherever the v4 default's grid spills into a second wave (session 15): NF4's entry
// 37 runs one row tile a block and, held to 64 registers by its launch bounds, 4 blocks a SM, so
// from 4 * SMs row tiles of 16 up (Llama-3.3-70B and Qwen3-32B qkv: 640 tiles on 132 SMs) its last
// wave is mostly empty, the cost the persistent kernel does not have. Same H200 call, run kernel
// against entry 37: 70B qkv 0.609 / 0.527 of the floor, Qwen3 qkv 0.501 / 0.467, while on the layers
// of one v4 wave entry 37 kept its lead (70B o 0.663 / 0.578, Llama-3-8B down 0.566 / 0.495).
bool gemv_run_wanted(const DeviceInfo& d, W4Format f, int m, int64_t n, int64_t k) {
  static const bool off = [] {
    const char* e = std::getenv("NIBBLE_GEMV_RUN");
    return e != nullptr && std::strcmp(e, "0") == 0;
  }();
  if (off || m > 8 || f == W4Format::kInt4 || k % 256 != 0) return false;
  if (n * k >= (m == 1 ? 100'000'000 : 40'000'000)) return true;
  const GemvConfig& v4 = kGemvConfigs[gemv_v4_default_config(d, f, m)];
  const int per_sm = gemv_v4_min_blocks_per_sm(v4.nt, v4.warps, v4.rd > 0 && f != W4Format::kInt4);
  if (m != 1 || per_sm <= 1) return false;  // only where the register cap pins its blocks a SM
  return gemv_v4_row_blocks(v4, w4_n16(n)) > static_cast<int64_t>(per_sm) * d.sm_count;
}

// Entry 51 (the warpgroup kernel, gemv_w4_wg.cuh: two warpgroups of 64 rows a block, wgmma on
// activations staged in shared memory) at 17-32 rows on sm_90a where N * K >= 43 M, every format.
// One H200 sweep of the 15 shapes at M = 32 (bench/results/gemv_m32_wg_sweep_*_NVIDIA-H200_2026-11-22.json,
// docs/kernels.md "Session 9"): it wins on every shape from Gemma-3-27B qkv (44 M: 29.9 -> 23.1 us)
// up (Llama-70B gate_up 208 -> 161 us against entry 50, which it replaces), ties on Qwen3-32B qkv,
// and loses on the three below: Qwen3-32B o (42 M: 28.9 -> 30.8 us), Llama-3-8B qkv, Gemma o,
// which keep the v4 default (entry 41 / 42). Geomean NF4 0.222 -> 0.261 of the floor, MXFP4 the
// same, INT4 0.258 -> 0.286. NIBBLE_GEMV_WG=0 turns it off (A/B runs: the v4 default then serves
// every shape).
bool gemv_wg_wanted(const DeviceInfo& d, int m, int64_t n, int64_t k) {
  static const bool off = [] {
    const char* e = std::getenv("NIBBLE_GEMV_WG");
    return e != nullptr && std::strcmp(e, "0") == 0;
  }();
  return !off && gemv_nt_for(m) == 4 && gemv_config_runs_on(51, d) && n * k >= 43'000'000;
}

int gemv_v4_default_config(const DeviceInfo& d, W4Format f, int m) {
  const int slot = gemv_nt_for(m) / 2, fi = static_cast<int>(f);
  return d.hopper() ? kGemvDefaultSm90[fi][slot] : kGemvDefaultSm80[fi][slot];
}
int gemv_default_config(const DeviceInfo& d, int m, int64_t n, int64_t k) {
  return gemv_default_config(d, W4Format::kNf4, m, n, k);
}

}  // namespace nibble::cuda

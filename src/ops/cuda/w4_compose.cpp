// Random packed weights and row concatenation (w4_compose.h). Both rely on the packed layout of
// gemv_w4.h being row-tile major: codes [N16][...], scales/zeros [N16][...], so whole row tiles
// can be generated or appended independently.
#include "ops/cuda/w4_compose.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "quant/nf4.h"

namespace nibble::cuda {
namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Random bytes, in parallel, reproducible whatever the thread count (each 64 KiB chunk has its
// own stream).
void fill_random(std::vector<uint8_t>& v, uint64_t seed) {
  constexpr size_t kChunk = 1 << 16;
  const int64_t n_chunks = static_cast<int64_t>((v.size() + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < n_chunks; ++c) {
    uint64_t s = seed * 0x100000001B3ull + static_cast<uint64_t>(c);
    const size_t begin = c * kChunk, end = std::min(v.size(), begin + kChunk);
    for (size_t i = begin; i < end; i += 8) {
      const uint64_t r = splitmix64(s);
      std::memcpy(v.data() + i, &r, std::min<size_t>(8, end - i));
    }
  }
}

size_t packed_code_bytes(int64_t n, int64_t k) { return static_cast<size_t>(w4_n16(n) * (k / 64) * 512); }

// One array of the packed layout, [N16][entries][E bytes], where each entry holds chunks of
// `chunk` bytes alternating between the lane group's rows g (even chunks) and g + 8 (odd ones):
// the codes (16-byte entries of 1-byte chunks: byte 4s + r is row g + 8 (r & 1)), and every
// format's scales and zero points. Output tile j takes its row-g chunks from gate tile j / 2 and
// its row-(g + 8) chunks from up tile j / 2, each from that tile's half j % 2.
std::vector<uint8_t> interleave_tiles(const std::vector<uint8_t>& gate, const std::vector<uint8_t>& up,
                                      int64_t tiles_out, size_t entries, size_t entry_bytes, size_t chunk) {
  std::vector<uint8_t> out(static_cast<size_t>(tiles_out) * entries * entry_bytes);
  const size_t tile_bytes = entries * entry_bytes, n_chunks = entry_bytes / chunk;
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < tiles_out; ++j) {
    const uint8_t* src[2] = {gate.data() + (j / 2) * tile_bytes, up.data() + (j / 2) * tile_bytes};
    uint8_t* dst = out.data() + j * tile_bytes;
    for (size_t e = 0; e < entries; ++e)
      for (size_t c = 0; c < n_chunks; ++c)
        std::memcpy(dst + e * entry_bytes + c * chunk, src[c & 1] + e * entry_bytes + ((c & ~size_t(1)) + (j & 1)) * chunk, chunk);
  }
  return out;
}

// A double-quantized NF4 part that is one checkpoint tensor (not already a composition).
bool dq_single(const W4Packed& w) {
  return (w.flags & kW4DoubleQuant) && !(w.flags & kW4NestedGlu) && w.dq.end_rt[0] == INT32_MAX;
}

}  // namespace

Result<W4Packed> w4_random(W4Format format, int64_t n, int64_t k, uint64_t seed) {
  if (n <= 0 || k <= 0 || k % (format == W4Format::kInt4 ? 128 : 64) != 0)
    return Status::invalid("w4_random: bad shape [{}, {}] for {}", n, k, w4_format_name(format));
  W4Packed w;
  w.format = format;
  w.n = n;
  w.k = k;
  w.q.resize(packed_code_bytes(n, k));
  fill_random(w.q, seed);
  uint64_t s = seed ^ 0xA5A5A5A5ull;
  const int64_t n16 = w4_n16(n), ku = k / 64;
  // Every format's codes have mean |value| near 0.5-1.5 of their scale unit; aim the scales at
  // a row norm near 1: element std ~ 1/sqrt(k).
  const float target = 1.0f / std::sqrt(static_cast<float>(k));
  switch (format) {
    case W4Format::kNf4: {
      const auto& code = quant::bnb4_code(quant::Bnb4Type::kNf4);
      std::copy(code.begin(), code.end(), w.code.begin());
      w.flags = kW4DoubleQuant;
      w.scales.resize(static_cast<size_t>(n16 * ku * 8 * 2));
      fill_random(w.scales, seed + 1);
      const auto& dmap = quant::dynamic_map_signed();
      w.dmap.assign(dmap.begin(), dmap.end());
      // absmax = dmap[q] * nested + offset with dmap in [-1, 1]: offset = 2 * target, nested =
      // target keeps every absmax in [target, 3 * target].
      w.dq = W4DqParts::single(2 * target);
      const int64_t n_nested = (n16 * 16 * ku + 255) / 256;
      w.nested.resize(static_cast<size_t>(n_nested));
      for (auto& x : w.nested) x = target * (0.75f + 0.5f * static_cast<float>(splitmix64(s) >> 40) / (1 << 24));
      w.stream_bytes = static_cast<size_t>(n * k / 2 + n * ku + ((n * ku + 255) / 256) * 4);
      break;
    }
    case W4Format::kInt4: {
      for (int c = 0; c < 16; ++c) w.code[c] = static_cast<float>(c - 8);
      const int64_t ng = k / 128;
      w.scales.resize(static_cast<size_t>(n16 * ng * 8 * 4));
      for (size_t i = 0; i < w.scales.size() / 2; ++i) {
        const float sc = target / 4.6f * (0.75f + 0.5f * static_cast<float>(splitmix64(s) >> 40) / (1 << 24));
        const uint16_t b = f32_to_bf16(sc);
        std::memcpy(w.scales.data() + 2 * i, &b, 2);
      }
      w.stream_bytes = static_cast<size_t>(n * k / 2 + n * ng * 2);
      break;
    }
    case W4Format::kMxfp4: {
      for (int c = 0; c < 16; ++c) {
        static constexpr float kE2m1[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
        w.code[c] = (c & 8 ? -1.0f : 1.0f) * kE2m1[c & 7];
      }
      // E8M0 exponents around log2(target / 2.6) (2.6 ~ rms of the E2M1 values), +-1.
      const int e0 = 127 + static_cast<int>(std::lround(std::log2(target / 2.6f)));
      w.scales.resize(static_cast<size_t>(n16 * ku * 8 * 4));
      for (auto& b : w.scales) b = static_cast<uint8_t>(e0 - 1 + static_cast<int>(splitmix64(s) % 3));
      w.stream_bytes = static_cast<size_t>(n * k / 2 + n * k / 32);
      break;
    }
  }
  return w;
}

Result<W4Packed> w4_interleave_glu(const W4Packed& gate, const W4Packed& up) {
  if (gate.format != up.format || gate.flags != up.flags || gate.k != up.k || gate.code != up.code || gate.n != up.n)
    return Status::invalid("w4_interleave_glu: gate and up differ in format, flags, codebook or shape");
  if (gate.n % 8 != 0) return Status::invalid("w4_interleave_glu: {} rows, not a multiple of 8", gate.n);
  const bool dq = gate.flags & kW4DoubleQuant;
  if (dq && (!dq_single(gate) || !dq_single(up) || gate.dmap != up.dmap))
    return Status::unsupported("w4_interleave_glu: double-quantized parts must be single tensors with one map");
  W4Packed w;
  w.format = gate.format;
  w.flags = gate.flags;
  w.k = gate.k;
  w.n = 2 * gate.n;
  w.code = gate.code;
  w.stream_bytes = gate.stream_bytes + up.stream_bytes;
  const int64_t tiles = w.n / 16, ku = w.k / 64, groups = w.k / 128;
  w.q = interleave_tiles(gate.q, up.q, tiles, static_cast<size_t>(ku) * 32, 16, 1);
  switch (w.format) {
    case W4Format::kNf4:
      if (dq) {  // uint8 absmax codes (row g, row g + 8) per (unit, g); the nested arrays end to end
        w.scales = interleave_tiles(gate.scales, up.scales, tiles, static_cast<size_t>(ku) * 8, 2, 1);
        w.flags |= kW4NestedGlu;
        w.nested = gate.nested;
        w.nested.insert(w.nested.end(), up.nested.begin(), up.nested.end());
        w.dmap = gate.dmap;
        w.dq.off[0][0] = gate.dq.off[0][0];
        w.dq.off[0][1] = up.dq.off[0][0];
        w.dq.nested_hi = static_cast<int32_t>(gate.nested.size());
      } else if (w.flags & kW4ScaleF16) {  // fp16 absmax: half2 (row g, row g + 8) per (unit, g)
        w.scales = interleave_tiles(gate.scales, up.scales, tiles, static_cast<size_t>(ku) * 8, 4, 2);
      } else {  // fp32 absmax: float2 (row g, row g + 8) per (unit, g)
        w.scales = interleave_tiles(gate.scales, up.scales, tiles, static_cast<size_t>(ku) * 8, 8, 4);
      }
      break;
    case W4Format::kInt4:  // 16-bit scale per row, 8-bit zero point per row, per (group, g)
      w.scales = interleave_tiles(gate.scales, up.scales, tiles, static_cast<size_t>(groups) * 8, 4, 2);
      if (!gate.zeros.empty()) w.zeros = interleave_tiles(gate.zeros, up.zeros, tiles, static_cast<size_t>(groups) * 8, 2, 1);
      break;
    case W4Format::kMxfp4:  // E8M0 bytes (g, 2u), (g + 8, 2u), (g, 2u + 1), (g + 8, 2u + 1)
      w.scales = interleave_tiles(gate.scales, up.scales, tiles, static_cast<size_t>(ku) * 8, 4, 1);
      break;
  }
  return w;
}

Result<W4Packed> w4_concat_rows(std::span<const W4Packed* const> parts) {
  if (parts.empty()) return Status::invalid("w4_concat_rows: no parts");
  const W4Packed& a = *parts[0];
  const bool dq = a.flags & kW4DoubleQuant;
  if (dq && parts.size() > static_cast<size_t>(kW4MaxParts))
    return Status::unsupported("w4_concat_rows: {} double-quantized parts, at most {}", parts.size(), kW4MaxParts);
  W4Packed w;
  w.format = a.format;
  w.flags = a.flags;
  w.k = a.k;
  w.code = a.code;
  w.dmap = a.dmap;
  const int64_t ku = a.k / 64;
  for (size_t i = 0; i < parts.size(); ++i) {
    const W4Packed& p = *parts[i];
    if (p.format != a.format || p.flags != a.flags || p.k != a.k || p.code != a.code)
      return Status::invalid("w4_concat_rows: part {} differs in format, flags, codebook or k", i);
    if (i + 1 < parts.size() && p.n % 16 != 0)
      return Status::invalid("w4_concat_rows: part {} has {} rows, not a multiple of 16", i, p.n);
    if (dq) {
      // Each part keeps its offset (W4DqParts) and its nested absmax, which the kernel indexes
      // by the packed row: the parts before the last must fill whole nested blocks of 256.
      if (!dq_single(p) || p.dmap != a.dmap)
        return Status::unsupported("w4_concat_rows: double-quantized part {} is not a single tensor with the first's map", i);
      if (i + 1 < parts.size() && (p.n * ku) % 256 != 0)
        return Status::unsupported("w4_concat_rows: double-quantized part {} ({} rows x {} blocks) ends inside a nested block",
                                   i, p.n, ku);
      const size_t n_nested = i + 1 < parts.size() ? static_cast<size_t>(p.n * ku / 256) : p.nested.size();
      w.nested.insert(w.nested.end(), p.nested.begin(), p.nested.begin() + n_nested);
      w.dq.off[i][0] = w.dq.off[i][1] = p.dq.off[0][0];
      if (i > 0) w.dq.end_rt[i - 1] = static_cast<int32_t>(w.n / 16);
    }
    w.n += p.n;
    w.q.insert(w.q.end(), p.q.begin(), p.q.end());
    w.scales.insert(w.scales.end(), p.scales.begin(), p.scales.end());
    w.zeros.insert(w.zeros.end(), p.zeros.begin(), p.zeros.end());
    w.stream_bytes += p.stream_bytes;
  }
  return w;
}

Result<W4Packed> w4_widen_nested(const W4Packed& w) {
  if (w.format != W4Format::kNf4 || !(w.flags & kW4DoubleQuant))
    return Status::invalid("w4_widen_nested: the weight is not double-quantized NF4");
  W4Packed out;
  out.format = w.format;
  out.n = w.n;
  out.k = w.k;
  out.flags = 0;
  out.code = w.code;
  out.q = w.q;
  out.stream_bytes = w.stream_bytes;
  const int64_t n16 = w4_n16(w.n), ku = w.k / 64;
  out.scales.resize(static_cast<size_t>(n16 * ku * 8 * 2 * 4));
#pragma omp parallel for schedule(static)
  for (int64_t rt = 0; rt < n16; ++rt)
    for (int64_t u = 0; u < ku; ++u)
      for (int g = 0; g < 8; ++g)
        for (int half = 0; half < 2; ++half) {
          const float a = w4_nf4_absmax(w, rt, u, g, half);
          std::memcpy(out.scales.data() + (((rt * ku + u) * 8 + g) * 2 + half) * 4, &a, 4);
        }
  return out;
}

Status w4_narrow_absmax(W4Packed& w) {
  if (w.format != W4Format::kNf4 || (w.flags & (kW4DoubleQuant | kW4ScaleF16)))
    return Status::invalid("w4_narrow_absmax: the weight is not NF4 with fp32 absmax");
  const size_t count = w.scales.size() / 4;
  std::vector<uint8_t> narrow(2 * count);
  for (size_t i = 0; i < count; ++i) {
    float a;
    std::memcpy(&a, w.scales.data() + 4 * i, 4);
    const uint16_t h = f32_to_f16(a);
    if ((h & 0x7C00u) == 0x7C00u)
      return Status::unsupported("w4_narrow_absmax: absmax {} does not fit fp16 (the weight keeps fp32 absmax)", a);
    std::memcpy(narrow.data() + 2 * i, &h, 2);
  }
  w.scales = std::move(narrow);
  w.flags |= kW4ScaleF16;
  return Status::ok();
}

}  // namespace nibble::cuda

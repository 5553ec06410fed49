// bitsandbytes-compatible 4-bit and 8-bit blockwise quantization. See nf4.h for the exact rules.
#include "quant/nf4.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace nibble::quant {

namespace {

constexpr std::array<float, 16> kNf4 = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

// FP4 as bitsandbytes defines it: 1 sign bit, 2 exponent bits (bias 2... in its own convention),
// 1 mantissa bit, magnitudes {0, 0.0625, 8, 12, 4, 6, 2, 3} in 3-bit order, divided by 12.
constexpr std::array<float, 16> kFp4 = {
    0.0f, 0.0625f / 12, 8.0f / 12, 12.0f / 12, 4.0f / 12, 6.0f / 12, 2.0f / 12, 3.0f / 12,
    -0.0f, -0.0625f / 12, -8.0f / 12, -12.0f / 12, -4.0f / 12, -6.0f / 12, -2.0f / 12, -3.0f / 12};

// The positive half of bitsandbytes' signed dynamic map (indices 128..255); the negative half
// mirrors it (index 126 - i holds -value[i]) and index 127 is 0. Hex floats: the exact fp32 values
// create_dynamic_map(signed=True) produces.
constexpr float kDynamicPositive[128] = {
    0x1.27476ep-21f, 0x1.b43528p-19f, 0x1.040bfep-17f, 0x1.64840cp-16f, 0x1.6f0068p-15f, 0x1.15df66p-14f,
    0x1.743e96p-14f, 0x1.47ae16p-13f, 0x1.19ce0ap-12f, 0x1.8fc506p-12f, 0x1.02de02p-11f, 0x1.3dd982p-11f,
    0x1.78d500p-11f, 0x1.b3d07cp-11f, 0x1.eecbfep-11f, 0x1.4fdf3ap-10f, 0x1.e353f8p-10f, 0x1.3b645ap-9f,
    0x1.851eb8p-9f, 0x1.ced914p-9f, 0x1.0c49bap-8f, 0x1.3126e8p-8f, 0x1.56041ap-8f, 0x1.7ae148p-8f,
    0x1.9fbe76p-8f, 0x1.c49ba6p-8f, 0x1.e978d4p-8f, 0x1.072b02p-7f, 0x1.19999ap-7f, 0x1.2c0830p-7f,
    0x1.3e76c8p-7f, 0x1.75c290p-7f, 0x1.d1eb86p-7f, 0x1.170a3ep-6f, 0x1.451ebap-6f, 0x1.733334p-6f,
    0x1.a147aep-6f, 0x1.cf5c2ap-6f, 0x1.fd70a4p-6f, 0x1.15c290p-5f, 0x1.2ccccep-5f, 0x1.43d70ap-5f,
    0x1.5ae146p-5f, 0x1.71eb86p-5f, 0x1.88f5c2p-5f, 0x1.a00000p-5f, 0x1.b70a3ep-5f, 0x1.ce147ap-5f,
    0x1.e51ebap-5f, 0x1.fc28f6p-5f, 0x1.09999ap-4f, 0x1.151ebap-4f, 0x1.20a3d6p-4f, 0x1.2c28f6p-4f,
    0x1.37ae14p-4f, 0x1.433334p-4f, 0x1.4eb854p-4f, 0x1.5a3d70p-4f, 0x1.65c290p-4f, 0x1.7147aep-4f,
    0x1.7ccccep-4f, 0x1.8851eep-4f, 0x1.93d70ap-4f, 0x1.b66668p-4f, 0x1.f00000p-4f, 0x1.14ccccp-3f,
    0x1.31999ap-3f, 0x1.4e6666p-3f, 0x1.6b3334p-3f, 0x1.880000p-3f, 0x1.a4ccccp-3f, 0x1.c1999ap-3f,
    0x1.de6666p-3f, 0x1.fb3332p-3f, 0x1.0c0000p-2f, 0x1.1a6668p-2f, 0x1.28ccccp-2f, 0x1.373334p-2f,
    0x1.459998p-2f, 0x1.540000p-2f, 0x1.626666p-2f, 0x1.70ccccp-2f, 0x1.7f3334p-2f, 0x1.8d9998p-2f,
    0x1.9c0000p-2f, 0x1.aa6666p-2f, 0x1.b8ccccp-2f, 0x1.c73334p-2f, 0x1.d59998p-2f, 0x1.e40000p-2f,
    0x1.f26664p-2f, 0x1.006666p-1f, 0x1.079998p-1f, 0x1.0eccccp-1f, 0x1.160000p-1f, 0x1.1d3334p-1f,
    0x1.246668p-1f, 0x1.2b999ap-1f, 0x1.32ccccp-1f, 0x1.3a0000p-1f, 0x1.413334p-1f, 0x1.486668p-1f,
    0x1.4f999ap-1f, 0x1.56ccccp-1f, 0x1.5e0000p-1f, 0x1.653334p-1f, 0x1.6c6668p-1f, 0x1.73999ap-1f,
    0x1.7accccp-1f, 0x1.820000p-1f, 0x1.893334p-1f, 0x1.906666p-1f, 0x1.97999ap-1f, 0x1.9eccccp-1f,
    0x1.a60000p-1f, 0x1.ad3334p-1f, 0x1.b46666p-1f, 0x1.bb999ap-1f, 0x1.c2ccccp-1f, 0x1.ca0000p-1f,
    0x1.d13334p-1f, 0x1.d86666p-1f, 0x1.df999ap-1f, 0x1.e6ccccp-1f, 0x1.ee0000p-1f, 0x1.f53334p-1f,
    0x1.fc6666p-1f, 0x1.p+0f,
};

// NF4 decision thresholds: the exact midpoints of neighbouring code values, rounded once to fp32.
// bnb's CUDA kernel spells them as decimal literals of those double midpoints; an fp32 sum
// (a + b) * 0.5f would differ where a + b needs one more bit (e.g. -1 + -0.696...).
std::array<float, 15> nf4_thresholds() {
  std::array<float, 15> t{};
  for (int i = 0; i < 15; ++i)
    t[i] = static_cast<float>((static_cast<double>(kNf4[i]) + static_cast<double>(kNf4[i + 1])) * 0.5);
  return t;
}

uint8_t nf4_encode(float x) {
  static const std::array<float, 15> t = nf4_thresholds();
  // Code = number of thresholds strictly below x; NaN compares false everywhere -> 0.
  uint8_t c = 0;
  for (int i = 0; i < 15; ++i) c += x > t[i];
  return c;
}

uint8_t fp4_encode(float x) {
  // bnb's FP4 thresholds on |x| (its CUDA kernel's constants, not all exact midpoints: 0.583333f
  // is one digit short of 7/12), each with the magnitude code it selects when exceeded.
  const uint8_t sign = x < 0 ? 0x8 : 0x0;
  const float a = std::fabs(x);
  if (a > 0.29166667f) {
    if (a > 0.583333f) return sign | (a > 0.8333333f ? 0b011 : 0b010);
    return sign | (a > 0.4166667f ? 0b101 : 0b100);
  }
  if (a > 0.0859375f) return sign | (a > 0.20833333f ? 0b111 : 0b110);
  return sign | (a > 0.00260417f ? 0b001 : 0b000);
}

}  // namespace

const std::array<float, 16>& bnb4_code(Bnb4Type t) { return t == Bnb4Type::kNf4 ? kNf4 : kFp4; }
const char* bnb4_name(Bnb4Type t) { return t == Bnb4Type::kNf4 ? "nf4" : "fp4"; }

uint8_t bnb4_encode(Bnb4Type t, float x) { return t == Bnb4Type::kNf4 ? nf4_encode(x) : fp4_encode(x); }

const std::array<float, 256>& dynamic_map_signed() {
  static const std::array<float, 256> map = [] {
    std::array<float, 256> m{};
    m[127] = 0.0f;
    for (int i = 0; i < 128; ++i) m[128 + i] = kDynamicPositive[i];
    for (int i = 0; i < 127; ++i) m[126 - i] = -kDynamicPositive[i];
    return m;
  }();
  return map;
}

uint8_t dynamic_encode(const float* code, float x) {
  // Binary search from the middle (pivot 127, steps 64..1), remembering the nearest pivots
  // above and below; the bounds start at -1 and 1 and become code[0] / code[255] if the search
  // never moved them. Then the nearer of the final pivot and its neighbour on x's side, by the
  // fp32 midpoint; a value exactly on the midpoint keeps the pivot.
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f;
  float val = code[pivot];
  for (int step = 64; step > 0; step >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += step;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= step;
    }
    val = code[pivot];
  }
  if (upper_pivot == 255) upper = code[255];
  if (lower_pivot == 0) lower = code[0];
  if (x > val) {
    const float mid = (upper + val) * 0.5f;
    return static_cast<uint8_t>(x > mid ? upper_pivot : pivot);
  }
  const float mid = (lower + val) * 0.5f;
  return static_cast<uint8_t>(x < mid ? lower_pivot : pivot);
}

namespace {

// max |x| over [begin, end) in fp32; NaNs are skipped as fmaxf does.
float block_absmax(const float* x, int64_t begin, int64_t end) {
  float m = -INFINITY;
  for (int64_t i = begin; i < end; ++i) m = std::fmax(m, std::fabs(x[i]));
  return m;
}

}  // namespace

Bnb4Quantized bnb4_quantize(const float* x, int64_t n, int blocksize, Bnb4Type t) {
  Bnb4Quantized out;
  const int64_t n_blocks = (n + blocksize - 1) / blocksize;
  out.absmax.resize(n_blocks);
  out.packed.assign((n + 1) / 2, 0);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t begin = b * blocksize, end = std::min(n, begin + blocksize);
    const float amax = block_absmax(x, begin, end);
    out.absmax[b] = amax;
    // Multiply by the fp32 reciprocal, as the kernel does (an all-zero block gives 0 * inf =
    // NaN, which encodes as code 0 and dequantizes to 0 * absmax = 0).
    const float inv = 1.0f / amax;
    for (int64_t i = begin; i < end; ++i) {
      const uint8_t c = bnb4_encode(t, x[i] * inv);
      out.packed[i >> 1] |= (i & 1) ? c : static_cast<uint8_t>(c << 4);
    }
  }
  return out;
}

Blockwise8 quantize_blockwise8(const float* x, int64_t n, int blocksize, const float* code256) {
  Blockwise8 out;
  const int64_t n_blocks = (n + blocksize - 1) / blocksize;
  out.absmax.resize(n_blocks);
  out.q.resize(n);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t begin = b * blocksize, end = std::min(n, begin + blocksize);
    const float amax = block_absmax(x, begin, end);
    out.absmax[b] = amax;
    const float inv = 1.0f / amax;
    for (int64_t i = begin; i < end; ++i) out.q[i] = dynamic_encode(code256, x[i] * inv);
  }
  return out;
}

// bitsandbytes takes the double-quant offset as torch.mean of the absmax vector on the GPU. This
// reproduces ATen's CUDA reduction of a contiguous float32 vector so that the offset is
// bit-identical (checked against torch 2.11 on an H200 for 16 lengths from 48 to 1.5M values,
// dev/kernels/torch_mean_order.py):
// - n > 128 is read as 4-wide vectors (4 accumulators a thread), else element by element with 4
//   accumulators strided by the block width; block width = largest power of two <= n/4 (or n),
//   at most 512 threads;
// - when a thread would see 256 or more values (n / width), the input is split over
//   max(min(528, ceil(v/16)), ceil(v/256)) blocks (528 = 132 SMs x 4 blocks of 512), interleaved
//   one block-width of vectors each;
// - each block sums its threads in a halving tree, the last block sums the blocks' partials the
//   same way, and the sum is multiplied by float(1 / n).
float bnb_mean(const float* x, int64_t n) {
  auto last_pow2 = [](int64_t v) {
    int64_t p = 1;
    while (p * 2 <= v) p *= 2;
    return p;
  };
  auto tree = [](std::vector<float>& v) {  // v.size() is a power of two
    for (size_t off = v.size() / 2; off >= 1; off /= 2)
      for (size_t t = 0; t < off; ++t) v[t] += v[t + off];
    return v[0];
  };
  const bool vectorized = n > 128;
  const int64_t width = std::min<int64_t>(last_pow2(vectorized ? n / 4 : n), 512);
  const int64_t per_thread = (n + width - 1) / width;
  int64_t blocks = 1;
  if (per_thread >= 256) blocks = std::max<int64_t>(std::min<int64_t>(528, (per_thread + 15) / 16), (per_thread + 255) / 256);

  std::vector<float> partial(blocks);
  std::vector<float> per(width);
  if (vectorized) {
    const int64_t n_vec = n / 4, step = width * blocks;
    std::vector<float> acc(static_cast<size_t>(step) * 4, 0.0f);  // [block][thread][lane]
    for (int64_t base = 0; base < n_vec; base += step) {
      const int64_t len = std::min(step, n_vec - base);
      for (int64_t v = 0; v < len; ++v)
        for (int i = 0; i < 4; ++i) acc[v * 4 + i] += x[(base + v) * 4 + i];
    }
    for (int64_t j = n_vec * 4; j < n; ++j) acc[(j - n_vec * 4) * 4] += x[j];  // tail: block 0, lane 0
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t t = 0; t < width; ++t) {
        const float* a = &acc[(b * width + t) * 4];
        per[t] = ((a[0] + a[1]) + a[2]) + a[3];
      }
      partial[b] = tree(per);
    }
  } else {
    for (int64_t t = 0; t < width; ++t) {
      float a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      int64_t idx = t;
      for (; idx + 3 * width < n; idx += 4 * width)
        for (int i = 0; i < 4; ++i) a[i] += x[idx + i * width];
      for (int i = 0; i < 4 && idx < n; ++i, idx += width) a[i] += x[idx];
      per[t] = ((a[0] + a[1]) + a[2]) + a[3];
    }
    partial[0] = tree(per);
  }
  float sum = partial[0];
  if (blocks > 1) {
    std::fill(per.begin(), per.end(), 0.0f);
    for (int64_t b = 0; b < blocks; ++b) per[b % width] += partial[b];
    sum = tree(per);
  }
  return sum * (1.0f / static_cast<float>(n));
}

DoubleQuant double_quantize(const std::vector<float>& absmax, int nested_blocksize) {
  DoubleQuant dq;
  dq.nested_blocksize = nested_blocksize;
  const int64_t n = static_cast<int64_t>(absmax.size());
  dq.offset = bnb_mean(absmax.data(), n);
  std::vector<float> centred(n);
  for (int64_t i = 0; i < n; ++i) centred[i] = absmax[i] - dq.offset;
  Blockwise8 b = quantize_blockwise8(centred.data(), n, nested_blocksize, dynamic_map_signed().data());
  dq.q = std::move(b.q);
  dq.nested_absmax = std::move(b.absmax);
  return dq;
}

std::vector<float> double_dequantize(const uint8_t* q, int64_t n_blocks, const float* nested_absmax,
                                     int nested_blocksize, const float* code256, float offset) {
  std::vector<float> out(n_blocks);
  for (int64_t i = 0; i < n_blocks; ++i) {
    // Two separately rounded fp32 operations, as bnb's kernel and torch's `+=` do: the volatile
    // keeps the compiler from contracting them into one fused multiply-add.
    volatile float v = code256[q[i]] * nested_absmax[i / nested_blocksize];
    out[i] = v + offset;
  }
  return out;
}

bool bnb4_blocksize_ok(int64_t bs) {
  return bs == 32 || bs == 64 || bs == 128 || bs == 256 || bs == 512 || bs == 1024 || bs == 2048 ||
         bs == 4096;
}

Bnb4Weight::Bnb4Weight(int64_t rows, int64_t cols, int blocksize, Bnb4Type type,
                       std::array<float, 16> code, const uint8_t* packed, std::vector<float> absmax,
                       size_t file_bytes, std::vector<uint8_t> owned, std::optional<Bnb4Nested> nested)
    : rows_(rows), cols_(cols), blocksize_(blocksize), type_(type), code_(code),
      owned_(std::move(owned)), packed_(owned_.empty() ? packed : owned_.data()),
      absmax_(std::move(absmax)), nested_(std::move(nested)), file_bytes_(file_bytes) {}

void Bnb4Weight::dequant_row(int64_t r, float* out) const {
  const int64_t e0 = r * cols_;
  int64_t c = 0;
  while (c < cols_) {
    // One block segment at a time: the scale is constant inside it.
    const int64_t e = e0 + c;
    const int64_t block = e / blocksize_;
    const int64_t seg_end = std::min(cols_, (block + 1) * blocksize_ - e0);
    const float s = absmax_[block];
    for (; c < seg_end; ++c) {
      const int64_t i = e0 + c;
      const uint8_t byte = packed_[i >> 1];
      const uint8_t nib = (i & 1) ? (byte & 0xF) : (byte >> 4);
      out[c] = code_[nib] * s;
    }
  }
}

std::string Bnb4Weight::format_name() const { return fmt::format("{}-b{}", bnb4_name(type_), blocksize_); }

}  // namespace nibble::quant

// Scalar dequantizers for the plain types and the 32-element block formats (Q4_0..Q8_0,
// IQ4_NL, MXFP4). Written from the block layouts; checked bit for bit against gguf-py.
#include "quant/ggml_dequant_impl.h"

namespace nibble {

using ggml_detail::f16;
using ggml_detail::load_block;

// ---- plain element types (block size 1) ----------------------------------------------------

void dequant_f32(const uint8_t* blocks, float* out, int64_t n) {
  std::memcpy(out, blocks, static_cast<size_t>(n) * 4);  // bits preserved, NaN payloads too
}

void dequant_f16(const uint8_t* blocks, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, blocks + 2 * i, 2);
    out[i] = f16(h);
  }
}

void dequant_bf16(const uint8_t* blocks, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, blocks + 2 * i, 2);
    out[i] = bf16_to_f32(h);
  }
}

// Wider or integer types round to nearest float (C++ conversion rules); gguf-py has no
// dequantizer for these, numpy's astype(float32) rounds the same way.
template <typename T>
static void dequant_plain(const uint8_t* blocks, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, blocks + sizeof(T) * i, sizeof(T));
    out[i] = static_cast<float>(v);
  }
}
void dequant_f64(const uint8_t* b, float* o, int64_t n) { dequant_plain<double>(b, o, n); }
void dequant_i8(const uint8_t* b, float* o, int64_t n) { dequant_plain<int8_t>(b, o, n); }
void dequant_i16(const uint8_t* b, float* o, int64_t n) { dequant_plain<int16_t>(b, o, n); }
void dequant_i32(const uint8_t* b, float* o, int64_t n) { dequant_plain<int32_t>(b, o, n); }
void dequant_i64(const uint8_t* b, float* o, int64_t n) { dequant_plain<int64_t>(b, o, n); }

// ---- 32-element blocks ----------------------------------------------------------------------
// In every 4-bit format below, byte j of qs holds element j in its low nibble and element
// j + 16 in its high nibble (not j*2, j*2+1): the two halves of a block unpack with one mask
// and one shift each.

// Q4_0: 32 weights; d f16; qs[16] 4-bit unsigned, offset 8. x = d * (q - 8). 18 bytes.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18);

void dequant_q4_0(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += 32) {
    const auto blk = load_block<BlockQ4_0>(blocks + b * sizeof(BlockQ4_0));
    const float d = f16(blk.d);
    for (int j = 0; j < 16; ++j) {
      out[j] = d * static_cast<float>((blk.qs[j] & 0x0F) - 8);
      out[j + 16] = d * static_cast<float>((blk.qs[j] >> 4) - 8);
    }
  }
}

// Q4_1: 32 weights; d f16 (scale), m f16 (min); qs[16] 4-bit unsigned. x = d*q + m. 20 bytes.
struct BlockQ4_1 {
  uint16_t d, m;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

void dequant_q4_1(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += 32) {
    const auto blk = load_block<BlockQ4_1>(blocks + b * sizeof(BlockQ4_1));
    const float d = f16(blk.d), m = f16(blk.m);
    for (int j = 0; j < 16; ++j) {
      out[j] = d * static_cast<float>(blk.qs[j] & 0x0F) + m;
      out[j + 16] = d * static_cast<float>(blk.qs[j] >> 4) + m;
    }
  }
}

// Q5_0: 32 weights; d f16; qh[4] = u32 LE whose bit j is the 5th bit of element j; qs[16] low
// 4 bits. x = d * (q - 16). 22 bytes (qh is bytes because a u32 at offset 2 would pad).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22);

void dequant_q5_0(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += 32) {
    const auto blk = load_block<BlockQ5_0>(blocks + b * sizeof(BlockQ5_0));
    const float d = f16(blk.d);
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int lo = (blk.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (blk.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      out[j] = d * static_cast<float>(lo - 16);
      out[j + 16] = d * static_cast<float>(hi - 16);
    }
  }
}

// Q5_1: 32 weights; d f16, m f16; qh[4] (u32 LE, 5th bits); qs[16]. x = d*q + m. 24 bytes.
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

void dequant_q5_1(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += 32) {
    const auto blk = load_block<BlockQ5_1>(blocks + b * sizeof(BlockQ5_1));
    const float d = f16(blk.d), m = f16(blk.m);
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    for (int j = 0; j < 16; ++j) {
      const unsigned lo = (blk.qs[j] & 0x0Fu) | (((qh >> j) & 1u) << 4);
      const unsigned hi = (blk.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4);
      out[j] = d * static_cast<float>(lo) + m;
      out[j + 16] = d * static_cast<float>(hi) + m;
    }
  }
}

// Q8_0: 32 weights; d f16; qs[32] int8. x = d * q. 34 bytes.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

void dequant_q8_0(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += 32) {
    const auto blk = load_block<BlockQ8_0>(blocks + b * sizeof(BlockQ8_0));
    const float d = f16(blk.d);
    for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(blk.qs[j]) * d;
  }
}

// The non-linear 4-bit codebook shared by IQ4_NL and IQ4_XS (format constant).
extern const int8_t kIq4nlValues[16];
const int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                 1,    13,   25,  38,  53,  69,  89,  113};

// IQ4_NL: 32 weights; d f16; qs[16] 4-bit indexes into kIq4nlValues. x = d * v[q]. 18 bytes.
struct BlockIq4Nl {
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockIq4Nl) == 18);

void dequant_iq4_nl(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += 32) {
    const auto blk = load_block<BlockIq4Nl>(blocks + b * sizeof(BlockIq4Nl));
    const float d = f16(blk.d);
    for (int j = 0; j < 16; ++j) {
      out[j] = d * static_cast<float>(kIq4nlValues[blk.qs[j] & 0x0F]);
      out[j + 16] = d * static_cast<float>(kIq4nlValues[blk.qs[j] >> 4]);
    }
  }
}

// MXFP4 (ggml flavour of OCP MX): 32 weights; e u8 = E8M0 shared exponent; qs[16] E2M1 codes.
// 17 bytes. ggml stores the E2M1 values doubled (integers) and halves the scale instead:
// x = half(e) * kMxfp4Doubled[q], with half(e) = 2^(e-128) built directly as float bits.
struct BlockMxfp4 {
  uint8_t e;
  uint8_t qs[16];
};
static_assert(sizeof(BlockMxfp4) == 17);

// E2M1 magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6 times two; bit 3 is the sign (8 = -0 -> 0).
static constexpr int8_t kMxfp4Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

static float e8m0_half(uint8_t e) {
  // 2^(e-128): a normal float with exponent field e-1 for e >= 2; for e = 0, 1 the subnormal
  // 2^-128 = bit 21 and 2^-127 = bit 22 of the mantissa.
  const uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e - 1) << 23);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void dequant_mxfp4(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += 32) {
    const auto blk = load_block<BlockMxfp4>(blocks + b * sizeof(BlockMxfp4));
    const float d = e8m0_half(blk.e);
    for (int j = 0; j < 16; ++j) {
      out[j] = d * static_cast<float>(kMxfp4Doubled[blk.qs[j] & 0x0F]);
      out[j + 16] = d * static_cast<float>(kMxfp4Doubled[blk.qs[j] >> 4]);
    }
  }
}

}  // namespace nibble

// Scalar dequantizers for the 256-element super-block formats: the k-quants (Q2_K..Q6_K) and
// IQ4_XS. Written from the block layouts; checked bit for bit against gguf-py. The expression
// order ((d * sc) * q - dmin * m) is the reference's: change it and the last bit changes.
#include "quant/ggml_dequant_impl.h"

namespace nibble {

extern const int8_t kIq4nlValues[16];  // ggml_dequant_basic.cpp

using ggml_detail::f16;
using ggml_detail::load_block;

// Q2_K: 256 weights = 16 sub-blocks of 16; scales[16]: low nibble = scale, high nibble = min
// (4-bit each); qs[64] 2-bit quants; d f16 (scale of scales), dmin f16 (scale of mins).
// x = (d*sc) * q - (dmin*m). 84 bytes.
// qs layout: two halves of 128 elements; in half h, element h*128 + s*32 + l is bits 2s..2s+1
// of qs[h*32 + l] (s = 0..3, l = 0..31).
struct BlockQ2K {
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d, dmin;
};
static_assert(sizeof(BlockQ2K) == 84);

void dequant_q2_k(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += kQK_K) {
    const auto blk = load_block<BlockQ2K>(blocks + b * sizeof(BlockQ2K));
    const float d = f16(blk.d), dmin = f16(blk.dmin);
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, s = (e % 128) / 32, l = e % 32;
      const int q = (blk.qs[h * 32 + l] >> (2 * s)) & 3;
      const uint8_t sc = blk.scales[e / 16];
      const float dl = d * static_cast<float>(sc & 0x0F);
      const float ml = dmin * static_cast<float>(sc >> 4);
      out[e] = dl * static_cast<float>(q) - ml;
    }
  }
}

// Q3_K: 256 weights = 16 sub-blocks of 16; hmask[32]: bit k of hmask[l] is the high bit of
// element k*32 + l; qs[64] low 2 bits (same layout as Q2_K); scales[12]: 16 signed 6-bit scales
// (offset 32): low 4 bits in nibbles of bytes 0..7 (scale i < 8 low nibble of byte i, i >= 8
// high nibble of byte i-8), high 2 bits in bytes 8..11 (scale i: bits 2*(i/4) of byte 8 + i%4);
// d f16. x = (d*(sc-32)) * (q2 - (hbit ? 0 : 4)). 110 bytes.
struct BlockQ3K {
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(BlockQ3K) == 110);

void dequant_q3_k(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += kQK_K) {
    const auto blk = load_block<BlockQ3K>(blocks + b * sizeof(BlockQ3K));
    const float d = f16(blk.d);
    float dl[16];
    for (int i = 0; i < 16; ++i) {
      const int lo = (i < 8 ? blk.scales[i] : blk.scales[i - 8] >> 4) & 0x0F;
      const int hi = (blk.scales[8 + i % 4] >> (2 * (i / 4))) & 0x03;
      dl[i] = d * static_cast<float>((lo | (hi << 4)) - 32);
    }
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, s = (e % 128) / 32, l = e % 32;
      const int q2 = (blk.qs[h * 32 + l] >> (2 * s)) & 3;
      const bool hbit = (blk.hmask[l] >> (e / 32)) & 1;
      out[e] = dl[e / 16] * static_cast<float>(q2 - (hbit ? 0 : 4));
    }
  }
}

// The 12-byte scale block shared by Q4_K and Q5_K: 8 sub-blocks, each a 6-bit scale and a
// 6-bit min. Bytes 0..3: scales 0..3 (low 6 bits), top 2 bits = high bits of scale 4..7;
// bytes 4..7: mins 0..3 likewise for mins 4..7; bytes 8..11: low nibble = low 4 bits of
// scale 4..7, high nibble = low 4 bits of min 4..7.
static void unpack_scale_min_k4(const uint8_t s[12], int sc[8], int m[8]) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 0x3F;
    m[j] = s[j + 4] & 0x3F;
    sc[j + 4] = (s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30);
    m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30);
  }
}

// Q4_K: 256 weights = 8 sub-blocks of 32; d, dmin f16; scales[12] 8 x (6-bit scale, 6-bit min)
// packed as above; qs[128]: chunk c (64 elements) uses qs[c*32..c*32+31], low nibbles for
// elements c*64 + l, high nibbles for c*64 + 32 + l. x = (d*sc) * q - (dmin*m). 144 bytes.
struct BlockQ4K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ4K) == 144);

void dequant_q4_k(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += kQK_K) {
    const auto blk = load_block<BlockQ4K>(blocks + b * sizeof(BlockQ4K));
    const float d = f16(blk.d), dmin = f16(blk.dmin);
    int sc[8], m[8];
    unpack_scale_min_k4(blk.scales, sc, m);
    for (int sb = 0; sb < 8; ++sb) {
      const float d1 = d * static_cast<float>(sc[sb]);
      const float m1 = dmin * static_cast<float>(m[sb]);
      const uint8_t* q = blk.qs + (sb / 2) * 32;
      const int shift = (sb % 2) * 4;
      for (int l = 0; l < 32; ++l)
        out[sb * 32 + l] = d1 * static_cast<float>((q[l] >> shift) & 0x0F) - m1;
    }
  }
}

// Q5_K: 256 weights = 8 sub-blocks of 32; d, dmin f16; scales[12] as Q4_K; qh[32]: bit k of
// qh[l] is the 5th bit of element k*32 + l; qs[128] low 4 bits as Q4_K.
// x = (d*sc) * q - (dmin*m). 176 bytes.
struct BlockQ5K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ5K) == 176);

void dequant_q5_k(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += kQK_K) {
    const auto blk = load_block<BlockQ5K>(blocks + b * sizeof(BlockQ5K));
    const float d = f16(blk.d), dmin = f16(blk.dmin);
    int sc[8], m[8];
    unpack_scale_min_k4(blk.scales, sc, m);
    for (int sb = 0; sb < 8; ++sb) {
      const float d1 = d * static_cast<float>(sc[sb]);
      const float m1 = dmin * static_cast<float>(m[sb]);
      const uint8_t* q = blk.qs + (sb / 2) * 32;
      const int shift = (sb % 2) * 4;
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0x0F) | (((blk.qh[l] >> sb) & 1) << 4);
        out[sb * 32 + l] = d1 * static_cast<float>(v) - m1;
      }
    }
  }
}

// Q6_K: 256 weights = 16 sub-blocks of 16; ql[128] low 4 bits; qh[64] high 2 bits; scales[16]
// int8; d f16. Two halves of 128: in half h, element h*128 + r has low bits from
// ql[h*64 + r%64] (low nibble for r < 64, high nibble otherwise) and high bits 2*(r/32) of
// qh[h*32 + r%32]. x = (d*sc) * (q - 32). 210 bytes.
struct BlockQ6K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6K) == 210);

void dequant_q6_k(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += kQK_K) {
    const auto blk = load_block<BlockQ6K>(blocks + b * sizeof(BlockQ6K));
    const float d = f16(blk.d);
    for (int e = 0; e < 256; ++e) {
      const int h = e / 128, r = e % 128;
      const int lo = (blk.ql[h * 64 + r % 64] >> (r < 64 ? 0 : 4)) & 0x0F;
      const int hi = (blk.qh[h * 32 + r % 32] >> (2 * (r / 32))) & 0x03;
      const float dl = d * static_cast<float>(blk.scales[e / 16]);
      out[e] = dl * static_cast<float>((lo | (hi << 4)) - 32);
    }
  }
}

// IQ4_XS: 256 weights = 8 sub-blocks of 32; d f16; scales_h u16 (bits 2i..2i+1 = high bits of
// scale i); scales_l[4] (low nibble = low 4 bits of scale 2k, high nibble of 2k+1); qs[128]:
// sub-block i uses qs[i*16..i*16+15], low nibbles = elements 0..15, high = 16..31, indexes into
// the IQ4_NL codebook. Scales are 6-bit with offset 32. x = (d*(ls-32)) * v[q]. 136 bytes.
struct BlockIq4Xs {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[4];
  uint8_t qs[128];
};
static_assert(sizeof(BlockIq4Xs) == 136);

void dequant_iq4_xs(const uint8_t* blocks, float* out, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, out += kQK_K) {
    const auto blk = load_block<BlockIq4Xs>(blocks + b * sizeof(BlockIq4Xs));
    const float d = f16(blk.d);
    for (int sb = 0; sb < 8; ++sb) {
      const int lo = (blk.scales_l[sb / 2] >> (4 * (sb % 2))) & 0x0F;
      const int hi = (blk.scales_h >> (2 * sb)) & 0x03;
      const float dl = d * static_cast<float>((lo | (hi << 4)) - 32);
      const uint8_t* q = blk.qs + sb * 16;
      for (int j = 0; j < 16; ++j) {
        out[sb * 32 + j] = dl * static_cast<float>(kIq4nlValues[q[j] & 0x0F]);
        out[sb * 32 + j + 16] = dl * static_cast<float>(kIq4nlValues[q[j] >> 4]);
      }
    }
  }
}

}  // namespace nibble

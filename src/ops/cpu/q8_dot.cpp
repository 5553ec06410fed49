// Q8 activation quantizers and integer block dot products, written from the facts of ggml's
// x86 AVX2 code (see q8_dot.h); scalar, so they are the same on every machine.
#include "ops/cpu/q8_dot.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"

// Every rounding is spelled out (std::fma where ggml's kernel has an FMA, separate operations
// elsewhere): the compiler must not fuse anything on its own.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace nibble::ops::q8 {

namespace {

// Shared by Q8_0 and Q8_1: the scale and the 32 rounded values of one block.
// ggml: d = amax / 127, id = 127 / amax (both f32 divisions, not 1/d), q = x * id rounded to
// nearest even (_mm256_round_ps(_MM_ROUND_NEAREST)), packed with signed saturation.
inline float quantize_block(const float* x, int8_t* qs, int32_t* sum) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  int32_t s = 0;
  for (int j = 0; j < kQK; ++j) {
    const float v = std::nearbyint(x[j] * id);  // default rounding mode: half to even
    const int32_t q = static_cast<int32_t>(std::clamp(v, -128.0f, 127.0f));
    qs[j] = static_cast<int8_t>(q);
    s += q;
  }
  *sum = s;
  return d;
}

// ggml's hsum_float_8: (a0+a4 + a2+a6) + (a1+a5 + a3+a7), in that association.
inline float hsum8(const float* a) {
  const float r0 = a[4] + a[0], r1 = a[5] + a[1], r2 = a[6] + a[2], r3 = a[7] + a[3];
  return (r0 + r2) + (r1 + r3);
}

// One weight block unpacked to the integers ggml's kernel multiplies, with its scales.
struct Unpacked {
  int32_t q[kQK];
  float d = 0.f;  // weight scale
  float m = 0.f;  // offset (the _1 types)
};

uint32_t read_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
float read_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// In the 4- and 5-bit layouts byte j of qs holds element j (low nibble) and j + 16 (high).
inline void unpack(GgmlType t, const uint8_t* b, Unpacked& u) {
  switch (t) {
    case GgmlType::Q4_1:  // d, m f16; qs[16]
      u.d = read_f16(b);
      u.m = read_f16(b + 2);
      for (int j = 0; j < 16; ++j) {
        u.q[j] = b[4 + j] & 0x0F;
        u.q[j + 16] = b[4 + j] >> 4;
      }
      break;
    case GgmlType::Q5_0: {  // d f16; qh u32; qs[16]; q - 16 as a signed byte
      u.d = read_f16(b);
      const uint32_t qh = read_u32(b + 2);
      for (int j = 0; j < 16; ++j) {
        u.q[j] = ((b[6 + j] & 0x0F) | (((qh >> j) & 1) << 4)) - 16;
        u.q[j + 16] = ((b[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      }
      break;
    }
    case GgmlType::Q5_1: {  // d, m f16; qh u32; qs[16]
      u.d = read_f16(b);
      u.m = read_f16(b + 2);
      const uint32_t qh = read_u32(b + 4);
      for (int j = 0; j < 16; ++j) {
        u.q[j] = (b[8 + j] & 0x0F) | (((qh >> j) & 1) << 4);
        u.q[j + 16] = (b[8 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      }
      break;
    }
    case GgmlType::Q8_0:  // d f16; qs[32] int8
      u.d = read_f16(b);
      for (int j = 0; j < kQK; ++j) u.q[j] = static_cast<int8_t>(b[2 + j]);
      break;
    default:
      break;  // vec_dot_type() keeps other types away
  }
}

}  // namespace

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    int32_t sum;
    y[i].d = f32_to_f16(quantize_block(x + i * kQK, y[i].qs, &sum));
  }
}

void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK; ++i) {
    int32_t sum;
    const float d = quantize_block(x + i * kQK, y[i].qs, &sum);
    y[i].d = f32_to_f16(d);
    // The AVX2 path: d (unrounded f32) times the integer sum, then f16. (ggml's scalar
    // reference sums the floats instead; x86 builds never run it.)
    y[i].s = f32_to_f16(d * static_cast<float>(sum));
  }
}

std::optional<GgmlType> vec_dot_type(GgmlType w) {
  switch (w) {
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
      return GgmlType::Q8_0;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
      return GgmlType::Q8_1;
    default:
      return std::nullopt;
  }
}

namespace {

// One weight type's dot, the type fixed at compile time so that unpacking and the integer
// products vectorize (the products are exact; only the float steps below carry the order).
template <GgmlType T>
float vec_dot_t(int64_t n, const uint8_t* w, const void* act) {
  constexpr bool kHasMin = T == GgmlType::Q4_1 || T == GgmlType::Q5_1;
  const int64_t nb = n / kQK;
  const size_t wbytes = ggml_type_info(T).type_size;
  // ggml keeps 8 float lanes; lane l takes the exact integer sum of elements 4l..4l+3 (the
  // maddubs/madd or VNNI dpbusd pair sums), scaled by dx*dy and added with one FMA per block.
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  float summs = 0.0f;  // the _1 types: sum over blocks of m * s, one FMA each (as g++ compiles it)
  Unpacked u;
  for (int64_t ib = 0; ib < nb; ++ib) {
    unpack(T, w + ib * wbytes, u);
    const int8_t* yq;
    float dy;
    if constexpr (kHasMin) {
      const auto& y = static_cast<const BlockQ8_1*>(act)[ib];
      yq = y.qs;
      dy = f16_to_f32(y.d);
      summs = std::fma(u.m, f16_to_f32(y.s), summs);
    } else {
      const auto& y = static_cast<const BlockQ8_0*>(act)[ib];
      yq = y.qs;
      dy = f16_to_f32(y.d);
    }
    int32_t prod[kQK];
    for (int e = 0; e < kQK; ++e) prod[e] = u.q[e] * yq[e];
    const float dxy = u.d * dy;
    for (int l = 0; l < 8; ++l) {
      const int32_t s = prod[4 * l] + prod[4 * l + 1] + prod[4 * l + 2] + prod[4 * l + 3];
      acc[l] = std::fma(dxy, static_cast<float>(s), acc[l]);
    }
  }
  if constexpr (kHasMin) return hsum8(acc) + summs;
  return hsum8(acc);
}

}  // namespace

float vec_dot(GgmlType t, int64_t n, const uint8_t* w, const void* act) {
  switch (t) {
    case GgmlType::Q4_1: return vec_dot_t<GgmlType::Q4_1>(n, w, act);
    case GgmlType::Q5_0: return vec_dot_t<GgmlType::Q5_0>(n, w, act);
    case GgmlType::Q5_1: return vec_dot_t<GgmlType::Q5_1>(n, w, act);
    case GgmlType::Q8_0: return vec_dot_t<GgmlType::Q8_0>(n, w, act);
    default: return 0.0f;  // vec_dot_type() keeps other types away
  }
}

}  // namespace nibble::ops::q8

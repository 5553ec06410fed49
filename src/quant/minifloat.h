// Small floating-point element and scale types shared by the FP4/FP8 formats: E2M1 (OCP FP4),
// E4M3 "fn" (no infinities; 0x7F/0xFF are NaN, max 448) and E8M0 (a bare power-of-two scale).
// Rounding is IEEE round-to-nearest-even in every case, with saturation to the largest finite
// value instead of overflow: that is what the OCP MX spec asks of FP4 elements and what
// quantizers do for FP8 (an FP8 weight that overflowed to NaN would poison a whole row).
#pragma once

#include <cmath>
#include <cstdint>

namespace nibble::quant {

// A format with `mbits` mantissa bits, exponent bias `bias` and largest finite code `max_code`
// (sign excluded). Encodes |a| (finite, >= 0) with RNE and saturation; the result has no sign bit.
// Works for any such format because a normal code is ((E + bias) << mbits) + (n - 2^mbits) with
// n the rounded significand: when rounding carries n up to 2^(mbits+1) the exponent field simply
// increments, and a subnormal that rounds up to 2^mbits lands on the smallest normal.
inline uint32_t encode_minifloat_abs(float a, int mbits, int bias, uint32_t max_code) {
  if (!(a > 0)) return 0;  // zero (a NaN is handled by the callers)
  int e2;
  std::frexp(a, &e2);  // a = f * 2^e2, f in [0.5, 1): unbiased exponent E = e2 - 1
  int E = e2 - 1;
  const int emin = 1 - bias;
  if (E < emin) E = emin;  // subnormal range: fixed quantum 2^(emin - mbits)
  // a / quantum is exact (a power-of-two scaling of a float that stays in range).
  const double scaled = std::ldexp(static_cast<double>(a), mbits - E);
  const double n = std::nearbyint(scaled);  // round half to even (default rounding mode)
  const uint32_t ni = static_cast<uint32_t>(n);
  uint32_t code;
  if (ni < (1u << mbits)) {
    code = ni;  // subnormal (only reachable when E == emin)
  } else {
    code = (static_cast<uint32_t>(E + bias) << mbits) + (ni - (1u << mbits));
  }
  return code > max_code ? max_code : code;
}

inline float decode_minifloat_abs(uint32_t code, int mbits, int bias) {
  const uint32_t e = code >> mbits;
  const uint32_t m = code & ((1u << mbits) - 1);
  if (e == 0) return std::ldexp(static_cast<float>(m), 1 - bias - mbits);
  return std::ldexp(static_cast<float>(m + (1u << mbits)), static_cast<int>(e) - bias - mbits);
}

// E2M1: sign bit 3, values 0, 0.5, 1, 1.5, 2, 3, 4, 6.
inline uint8_t e2m1_encode(float x) {
  if (std::isnan(x)) return 0;  // no NaN in E2M1; callers never pass one
  const uint8_t sign = std::signbit(x) ? 0x8 : 0;
  return sign | static_cast<uint8_t>(encode_minifloat_abs(std::fabs(x), 1, 1, 7));
}
inline float e2m1_decode(uint8_t c) {
  static constexpr float kValues[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                        -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
  return kValues[c & 0xF];
}

// E4M3fn: bias 7, no infinities, max 448 (code 0x7E); 0x7F is NaN.
inline uint8_t e4m3_encode(float x) {
  if (std::isnan(x)) return 0x7F;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  return sign | static_cast<uint8_t>(encode_minifloat_abs(std::fabs(x), 3, 7, 0x7E));
}
inline float e4m3_decode(uint8_t c) {
  if ((c & 0x7F) == 0x7F) return NAN;
  const float a = decode_minifloat_abs(c & 0x7F, 3, 7);
  return (c & 0x80) ? -a : a;
}

// E8M0: 2^(c - 127); 0xFF is NaN.
inline float e8m0_decode(uint8_t c) { return c == 0xFF ? NAN : std::ldexp(1.0f, static_cast<int>(c) - 127); }

// floor(log2(a)) for a finite a > 0, exact (subnormals included).
inline int floor_log2(float a) {
  int e;
  std::frexp(a, &e);
  return e - 1;
}

}  // namespace nibble::quant

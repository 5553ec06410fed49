#include "core/dtype.h"

#include <array>
#include <utility>

namespace nibble {

namespace {
struct DTypeInfo {
  DType type;
  std::string_view name;         // ours, lower case
  std::string_view safetensors;  // as written in safetensors headers
  size_t size;
};
constexpr std::array<DTypeInfo, 12> kDTypes = {{
    {DType::kF32, "f32", "F32", 4},
    {DType::kF16, "f16", "F16", 2},
    {DType::kBF16, "bf16", "BF16", 2},
    {DType::kF64, "f64", "F64", 8},
    {DType::kI8, "i8", "I8", 1},
    {DType::kU8, "u8", "U8", 1},
    {DType::kI16, "i16", "I16", 2},
    {DType::kI32, "i32", "I32", 4},
    {DType::kI64, "i64", "I64", 8},
    {DType::kBool, "bool", "BOOL", 1},
    {DType::kF8E4M3, "f8_e4m3", "F8_E4M3", 1},
    {DType::kF8E5M2, "f8_e5m2", "F8_E5M2", 1},
}};
const DTypeInfo& info(DType t) { return kDTypes[static_cast<size_t>(t)]; }
}  // namespace

size_t dtype_size(DType t) { return info(t).size; }
std::string_view dtype_name(DType t) { return info(t).name; }

std::optional<DType> dtype_from_safetensors(std::string_view s) {
  for (const auto& d : kDTypes)
    if (d.safetensors == s) return d.type;
  return std::nullopt;
}

float f16_to_f32_soft(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);  // inf or NaN
  } else if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400u) == 0);
      u = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else {
    u = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;  // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to inf
  if (abs < 0x38800000u) {                       // subnormal or zero in f16
    // value = abs_float; f16 subnormal unit is 2^-24.
    float a;
    std::memcpy(&a, &abs, 4);
    // Round to nearest even at 2^-24 granularity using the float adder.
    const float magic = 0.5f;  // 2^-1: adding shifts mantissa so ulp becomes 2^-24
    float t = a + magic;
    uint32_t tu;
    std::memcpy(&tu, &t, 4);
    return sign | static_cast<uint16_t>(tu - 0x3f000000u);
  }
  // Normal: rebias exponent and round mantissa to 10 bits, nearest even.
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);
  r -= (127u - 15u) << 23;
  return sign | static_cast<uint16_t>(r >> 13);
}

}  // namespace nibble

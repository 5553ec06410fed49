// Element types and the scalar conversions every backend agrees on.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace nibble {

// Plain element types. Block-quantized formats (NF4, INT4, GGUF k-quants...) are not DTypes:
// they live in src/quant with their own layouts and are described by QuantFormat there.
enum class DType : uint8_t { kF32, kF16, kBF16, kF64, kI8, kU8, kI16, kI32, kI64, kBool, kF8E4M3, kF8E5M2 };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);
// The names safetensors uses: "F32", "BF16", "F8_E4M3"...
std::optional<DType> dtype_from_safetensors(std::string_view s);

// bf16 is the top half of an fp32: widening is exact, narrowing rounds to nearest even.
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// IEEE binary16 conversions, exact for every value (subnormals included). Widening is one
// instruction where F16C exists (every x86-64-v3 CPU); it sits on the hot path of f16 weights
// and of every ggml block scale.
float f16_to_f32_soft(uint16_t h);
#if defined(__F16C__)
inline float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
#else
inline float f16_to_f32(uint16_t h) { return f16_to_f32_soft(h); }
#endif
uint16_t f32_to_f16(float f);

}  // namespace nibble

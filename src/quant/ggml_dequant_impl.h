// Shared by the ggml_dequant*.cpp files only: block structs and the floating-point contract.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "quant/ggml_types.h"

static_assert(std::endian::native == std::endian::little,
              "GGUF blocks are little-endian; the dequantizers read them in place");

// Bit-exactness with the reference needs every product and sum rounded separately: ggml and
// gguf-py compute e.g. (d*sc)*q - dmin*m with two roundings. g++ fuses a*b+c into an FMA by
// default in C++ (-ffp-contract=fast) once -march=native allows it, clang within expressions,
// so contraction is switched off for the files that include this header (include it last).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace nibble::ggml_detail {

// Block structs describe the layout; they hold bytes/uint16 only (alignment <= 2, no padding),
// and are filled with memcpy from the file so that any source alignment is fine.
template <typename Block>
inline Block load_block(const uint8_t* p) {
  Block b;
  std::memcpy(&b, p, sizeof(Block));
  return b;
}

inline float f16(uint16_t h) { return f16_to_f32(h); }

}  // namespace nibble::ggml_detail

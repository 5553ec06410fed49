// llama.cpp's CPU matmul for ggml-quantized weights, emulated bit for bit in portable C++:
// each activation row is quantized to 8 bits per 32 values (Q8_0 / Q8_1, the weight type's
// "vec_dot_type"), then every weight row meets it in an integer block dot product whose
// per-block scaling and float accumulation order follow ggml's x86 AVX2 kernels
// (ggml/src/ggml-cpu/arch/x86/quants.c, llama.cpp 0c1e57098bba). Used by the llamacpp numerics
// mode only; the default path computes exactly on dequantized weights.
#pragma once

#include <cstdint>
#include <optional>

#include "quant/ggml_types.h"

namespace nibble::ops::q8 {

inline constexpr int kQK = 32;  // values per Q8_0 / Q8_1 block

struct BlockQ8_0 {  // 34 bytes, ggml's block_q8_0
  uint16_t d;       // f16 scale: amax / 127
  int8_t qs[kQK];
};
struct BlockQ8_1 {  // 36 bytes, ggml's block_q8_1
  uint16_t d;       // f16 scale: amax / 127
  uint16_t s;       // f16 of d * sum(qs), d before its f16 rounding
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);

// x: [k] (k a multiple of 32) -> y: [k / 32] blocks, as ggml's AVX2 quantize_row_q8_0/_1:
// d = amax / 127 (f32 division), q = round-half-even(x * (127 / amax)).
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k);
void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t k);

// The activation format ggml pairs with a weight type on this machine's code path (Q8_0 or
// Q8_1), or nullopt where nibble does not emulate the dot product: F32/F16/BF16 weights, the
// types llama.cpp repacks on AVX2 (Q4_0, IQ4_NL, MXFP4, most K-quants) and the rest.
std::optional<GgmlType> vec_dot_type(GgmlType weight);

// One weight row (n values of `weight` blocks, ggml layout) against one quantized activation
// row (Q8_0 or Q8_1 blocks, as vec_dot_type(weight) says). n: a multiple of 32.
float vec_dot(GgmlType weight, int64_t n, const uint8_t* w_row, const void* act_row);

}  // namespace nibble::ops::q8

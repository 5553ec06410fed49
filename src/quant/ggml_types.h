// ggml tensor types as stored in GGUF files: one constexpr table (id, name, block geometry) and
// the scalar reference dequantizers. The table is header-only so that src/io/gguf can size
// tensors without a link dependency on nibble_quant.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/status.h"

namespace nibble {

// Numbering fixed by the GGUF format (ggml's enum ggml_type). Gaps are layouts ggml removed.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41,
};

struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;
  uint32_t block_size;    // elements per block
  uint32_t type_size;     // bytes per block
  bool has_dequant;       // a scalar dequantizer exists in ggml_dequant*.cpp
};

inline constexpr uint32_t kQK_K = 256;  // super-block size of the k-quants and IQ4_XS

// clang-format off
inline constexpr std::array<GgmlTypeInfo, 34> kGgmlTypes = {{
  {GgmlType::F32,     "F32",     1,   4,   true},
  {GgmlType::F16,     "F16",     1,   2,   true},
  {GgmlType::Q4_0,    "Q4_0",    32,  18,  true},
  {GgmlType::Q4_1,    "Q4_1",    32,  20,  true},
  {GgmlType::Q5_0,    "Q5_0",    32,  22,  true},
  {GgmlType::Q5_1,    "Q5_1",    32,  24,  true},
  {GgmlType::Q8_0,    "Q8_0",    32,  34,  true},
  {GgmlType::Q8_1,    "Q8_1",    32,  36,  false},
  {GgmlType::Q2_K,    "Q2_K",    256, 84,  true},
  {GgmlType::Q3_K,    "Q3_K",    256, 110, true},
  {GgmlType::Q4_K,    "Q4_K",    256, 144, true},
  {GgmlType::Q5_K,    "Q5_K",    256, 176, true},
  {GgmlType::Q6_K,    "Q6_K",    256, 210, true},
  {GgmlType::Q8_K,    "Q8_K",    256, 292, false},
  {GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66,  false},
  {GgmlType::IQ2_XS,  "IQ2_XS",  256, 74,  false},
  {GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98,  false},
  {GgmlType::IQ1_S,   "IQ1_S",   256, 50,  false},
  {GgmlType::IQ4_NL,  "IQ4_NL",  32,  18,  true},
  {GgmlType::IQ3_S,   "IQ3_S",   256, 110, false},
  {GgmlType::IQ2_S,   "IQ2_S",   256, 82,  false},
  {GgmlType::IQ4_XS,  "IQ4_XS",  256, 136, true},
  {GgmlType::I8,      "I8",      1,   1,   true},
  {GgmlType::I16,     "I16",     1,   2,   true},
  {GgmlType::I32,     "I32",     1,   4,   true},
  {GgmlType::I64,     "I64",     1,   8,   true},
  {GgmlType::F64,     "F64",     1,   8,   true},
  {GgmlType::IQ1_M,   "IQ1_M",   256, 56,  false},
  {GgmlType::BF16,    "BF16",    1,   2,   true},
  {GgmlType::TQ1_0,   "TQ1_0",   256, 54,  false},
  {GgmlType::TQ2_0,   "TQ2_0",   256, 66,  false},
  {GgmlType::MXFP4,   "MXFP4",   32,  17,  true},
  {GgmlType::NVFP4,   "NVFP4",   64,  36,  false},
  {GgmlType::Q1_0,    "Q1_0",    128, 18,  false},
}};
// clang-format on

// The table entry for a raw id read from a file, or nullptr for an unknown/removed id.
constexpr const GgmlTypeInfo* ggml_type_info(uint32_t id) {
  for (const auto& t : kGgmlTypes)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}
constexpr const GgmlTypeInfo& ggml_type_info(GgmlType t) { return *ggml_type_info(static_cast<uint32_t>(t)); }
constexpr std::string_view ggml_type_name(GgmlType t) { return ggml_type_info(t).name; }
// Case-sensitive, as gguf-dump prints them ("Q4_K").
std::optional<GgmlType> ggml_type_from_name(std::string_view name);

// Bytes of `n` elements (one row), or nullopt when n is not a multiple of the block size or the
// size overflows.
std::optional<uint64_t> ggml_row_bytes(GgmlType t, uint64_t n);

// ---------------------------------------------------------------------------------------------
// Scalar reference dequantizers, bit-exact to gguf-py / ggml. Each expands n_blocks consecutive
// blocks (`blocks`: n_blocks * type_size bytes, any alignment) into n_blocks * block_size floats.
// No input is invalid: every bit pattern decodes (NaN/Inf scales pass through).
void dequant_f32(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_f16(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_bf16(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_f64(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_i8(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_i16(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_i32(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_i64(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_q4_0(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_q4_1(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_q5_0(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_q5_1(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_q8_0(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_iq4_nl(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_mxfp4(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_q2_k(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_q3_k(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_q4_k(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_q5_k(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_q6_k(const uint8_t* blocks, float* out, int64_t n_blocks);
void dequant_iq4_xs(const uint8_t* blocks, float* out, int64_t n_blocks);

// One row: n elements (a multiple of the block size) from `row` to `out` [n].
Status ggml_dequantize_row(GgmlType t, const uint8_t* row, float* out, int64_t n);

// A whole tensor of `rows` x `cols` elements (cols = ne[0], the row length; rows = the product
// of the other dims), stored as consecutive rows of blocks, to float32 `out` [rows, cols].
// `nbytes` is the size of `data` and is checked. Threads over rows with OpenMP.
Status ggml_dequantize(GgmlType t, const uint8_t* data, size_t nbytes, int64_t rows, int64_t cols,
                       float* out);

}  // namespace nibble

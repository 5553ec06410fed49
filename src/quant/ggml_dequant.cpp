// Dispatch from GgmlType to the scalar dequantizers, and whole-tensor dequantization.
#include <limits>

#include "quant/ggml_types.h"

namespace nibble {

using DequantFn = void (*)(const uint8_t*, float*, int64_t);

static DequantFn dequant_fn(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return dequant_f32;
    case GgmlType::F16: return dequant_f16;
    case GgmlType::BF16: return dequant_bf16;
    case GgmlType::F64: return dequant_f64;
    case GgmlType::I8: return dequant_i8;
    case GgmlType::I16: return dequant_i16;
    case GgmlType::I32: return dequant_i32;
    case GgmlType::I64: return dequant_i64;
    case GgmlType::Q4_0: return dequant_q4_0;
    case GgmlType::Q4_1: return dequant_q4_1;
    case GgmlType::Q5_0: return dequant_q5_0;
    case GgmlType::Q5_1: return dequant_q5_1;
    case GgmlType::Q8_0: return dequant_q8_0;
    case GgmlType::IQ4_NL: return dequant_iq4_nl;
    case GgmlType::MXFP4: return dequant_mxfp4;
    case GgmlType::Q2_K: return dequant_q2_k;
    case GgmlType::Q3_K: return dequant_q3_k;
    case GgmlType::Q4_K: return dequant_q4_k;
    case GgmlType::Q5_K: return dequant_q5_k;
    case GgmlType::Q6_K: return dequant_q6_k;
    case GgmlType::IQ4_XS: return dequant_iq4_xs;
    default: return nullptr;
  }
}

Status ggml_dequantize_row(GgmlType t, const uint8_t* row, float* out, int64_t n) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(t));
  if (!info) return Status::invalid("dequantize: unknown ggml type {}", static_cast<uint32_t>(t));
  DequantFn fn = dequant_fn(t);
  if (!fn) return Status::unsupported("dequantize: no dequantizer for ggml type {}", info->name);
  if (n < 0 || n % info->block_size != 0)
    return Status::invalid("dequantize {}: {} elements is not a multiple of the block size {}",
                           info->name, n, info->block_size);
  fn(row, out, n / info->block_size);
  return Status::ok();
}

Status ggml_dequantize(GgmlType t, const uint8_t* data, size_t nbytes, int64_t rows, int64_t cols,
                       float* out) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(t));
  if (!info) return Status::invalid("dequantize: unknown ggml type {}", static_cast<uint32_t>(t));
  DequantFn fn = dequant_fn(t);
  if (!fn) return Status::unsupported("dequantize: no dequantizer for ggml type {}", info->name);
  if (rows < 0 || cols < 0 || cols % info->block_size != 0)
    return Status::invalid("dequantize {}: shape [{}, {}] needs a row length that is a multiple of {}",
                           info->name, rows, cols, info->block_size);
  const uint64_t row_bytes = static_cast<uint64_t>(cols) / info->block_size * info->type_size;
  if (rows > 0 && row_bytes > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(rows))
    return Status::invalid("dequantize {}: shape [{}, {}] overflows", info->name, rows, cols);
  if (row_bytes * static_cast<uint64_t>(rows) != nbytes)
    return Status::invalid("dequantize {}: shape [{}, {}] needs {} bytes, got {}", info->name, rows,
                           cols, row_bytes * static_cast<uint64_t>(rows), nbytes);
  const int64_t blocks_per_row = cols / info->block_size;
  // Rows are independent runs of blocks; static schedule since every row costs the same.
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; ++r)
    fn(data + static_cast<uint64_t>(r) * row_bytes, out + r * cols, blocks_per_row);
  return Status::ok();
}

}  // namespace nibble

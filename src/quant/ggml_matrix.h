// A ggml-quantized GGUF tensor viewed as a [rows, cols] QuantWeight. The blocks stay in the
// file's mapping; `row_blocks` exposes them for kernels that compute on the blocks themselves
// (the llama.cpp-compatible numerics mode, src/ops/cpu/llamacpp_ops.cpp).
#pragma once

#include <cctype>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "quant/ggml_types.h"
#include "quant/quant_weight.h"

namespace nibble {

class GgmlMatrix : public QuantWeight {
 public:
  // row_map: [rows] HF row -> GGUF row (llama.cpp's Q/K interleave undone); empty = identity.
  GgmlMatrix(const GgufTensor& t, std::vector<int32_t> row_map) : t_(t), row_map_(std::move(row_map)) {}
  int64_t rows() const override { return t_.rows; }
  int64_t cols() const override { return t_.cols; }
  void dequant_row(int64_t r, float* out) const override {
    // Cannot fail: the reader checked the type and that rows are whole blocks.
    (void)ggml_dequantize_row(t_.type, row_blocks(r), out, t_.cols);
  }
  size_t nbytes() const override { return t_.nbytes; }
  std::string format_name() const override {
    std::string n(ggml_type_name(t_.type));
    for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return n;
  }

  GgmlType type() const { return t_.type; }
  // The blocks of row r (HF order): cols / block_size blocks of the type's layout.
  const uint8_t* row_blocks(int64_t r) const {
    const int64_t src = row_map_.empty() ? r : row_map_[r];
    return t_.data + src * t_.row_bytes;
  }

 private:
  const GgufTensor& t_;
  std::vector<int32_t> row_map_;  // [rows] HF row -> GGUF row; empty = identity
};

}  // namespace nibble

// INT4 weight-only quantization with group-wise scales (w4a16), the common target of GPTQ, AWQ
// and compressed-tensors pack-quantized checkpoints. Each import repacks its file layout into
// this one layout (the integer codes, zero points and scales are kept exactly; only their order
// in memory changes), so every INT4 checkpoint dequantizes through one routine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/quant_weight.h"

namespace nibble::quant {

// Layout ([rows, cols] = [out_features, in_features]):
//   codes   uint8 [rows, ceil(cols/2)]  element (r, c) in byte c/2 of row r, LOW nibble when c is
//                                       even (unsigned code 0..15)
//   scales  fp32  [rows, n_groups]      widened exactly from the file's fp16/bf16
//   zeros   uint8 [rows, n_groups]      the zero point the format subtracts (0..16: GPTQ v1's
//                                       "stored + 1" can reach 16); 8 for symmetric formats
//   g_idx   int32 [cols] or empty       group of column c; empty means c / group_size
// value(r, c) = (code - zero) * scale, exact in fp32 (|code - zero| <= 16 and the scale has at
// most 11 significant bits), so no rounding happens here at all.
struct Int4Data {
  int64_t rows = 0, cols = 0;
  int group_size = 128;  // columns per group; == cols for per-channel
  int64_t n_groups = 0;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  std::vector<uint8_t> zeros;
  std::vector<int32_t> g_idx;
  bool symmetric = true;  // informational (zeros are all 8)
};

class Int4Weight : public QuantWeight {
 public:
  Int4Weight(Int4Data d, size_t file_bytes, std::string origin);
  int64_t rows() const override { return d_.rows; }
  int64_t cols() const override { return d_.cols; }
  void dequant_row(int64_t r, float* out) const override;
  size_t nbytes() const override { return file_bytes_; }
  std::string format_name() const override;
  const Int4Data& data() const { return d_; }
  int code(int64_t r, int64_t c) const {
    const uint8_t b = d_.codes[r * ((d_.cols + 1) / 2) + c / 2];
    return (c & 1) ? (b >> 4) : (b & 0xF);
  }

 private:
  Int4Data d_;
  size_t file_bytes_;
  std::string origin_;  // "gptq", "awq", "compressed-tensors"
};

// Round-to-nearest group-wise quantization of w [rows, cols] (what `nibble quantize --format
// int4` writes): symmetric, scale = max|w| / 7.5 rounded to bf16 (the dtype the scales are saved
// in), q = clamp(round_half_even(w / scale), -8, 7) stored as q + 8; zero = 8.
// group_size <= 0 means one group per row (per channel).
Int4Data int4_quantize_symmetric(const float* w, int64_t rows, int64_t cols, int group_size);

}  // namespace nibble::quant

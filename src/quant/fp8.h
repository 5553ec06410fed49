// FP8 E4M3 weights with one fp32 scale per output channel (row).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/quant_weight.h"

namespace nibble::quant {

// Layout ([rows, cols]):
//   codes  uint8 [rows, cols]  E4M3fn (safetensors dtype F8_E4M3)
//   scales fp32  [rows]        value = e4m3(code) * scale[r]
struct Fp8Data {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
};

// scale = amax(row) / 448 (1 for an all-zero row); code = e4m3_rne_sat(x / scale).
Fp8Data fp8_quantize(const float* w, int64_t rows, int64_t cols);

class Fp8Weight : public QuantWeight {
 public:
  Fp8Weight(int64_t rows, int64_t cols, const uint8_t* codes, const float* scales, Fp8Data owned = {});
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void dequant_row(int64_t r, float* out) const override;
  size_t nbytes() const override { return rows_ * cols_ + rows_ * 4; }
  std::string format_name() const override { return "fp8-e4m3-ch"; }

 private:
  int64_t rows_, cols_;
  Fp8Data owned_;
  const uint8_t* codes_;
  const float* scales_;
  float lut_[256];  // code -> value: decoding is a table lookup
};

}  // namespace nibble::quant

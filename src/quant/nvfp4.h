// NVFP4: blocks of 16 consecutive elements along a row share one E4M3 scale, and the whole
// tensor shares one fp32 global scale; each element is E2M1. Two-level scaling lets the E4M3
// block scales use their full range whatever the tensor's magnitude.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/quant_weight.h"

namespace nibble::quant {

constexpr int kNvfp4Block = 16;

// Layout ([rows, cols], cols a multiple of 16):
//   packed uint8 [rows, cols/2]   element (r, c) in byte c/2, LOW nibble when c is even, E2M1
//   scales uint8 [rows, cols/16]  E4M3fn block scale
//   global fp32  (one)            multiplier: value = e2m1(code) * e4m3(scale) * global
struct Nvfp4Data {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> packed;
  std::vector<uint8_t> scales;
  float global = 1.0f;
};

// global = amax(tensor) / (448 * 6) so that the largest block scale lands on E4M3's maximum;
// block scale = e4m3_rne_sat(amax(block) / 6 / global); elements x / (scale * global) rounded to
// nearest even E2M1 with saturation (0 when the decoded block scale is 0).
Nvfp4Data nvfp4_quantize(const float* w, int64_t rows, int64_t cols);

class Nvfp4Weight : public QuantWeight {
 public:
  Nvfp4Weight(int64_t rows, int64_t cols, const uint8_t* packed, const uint8_t* scales, float global,
              Nvfp4Data owned = {});
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void dequant_row(int64_t r, float* out) const override;
  size_t nbytes() const override { return rows_ * cols_ / 2 + rows_ * cols_ / kNvfp4Block + 4; }
  std::string format_name() const override { return "nvfp4"; }

 private:
  int64_t rows_, cols_;
  Nvfp4Data owned_;
  const uint8_t* packed_;
  const uint8_t* scales_;
  float global_;
};

}  // namespace nibble::quant

// MXFP4 (OCP Microscaling v1.0): blocks of 32 consecutive elements along a row share one E8M0
// scale (a power of two); each element is E2M1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/quant_weight.h"

namespace nibble::quant {

constexpr int kMxfp4Block = 32;

// Layout ([rows, cols], cols a multiple of 32):
//   packed uint8 [rows, cols/2]   element (r, c) in byte c/2, LOW nibble when c is even (the
//                                 OCP / compressed-tensors / ggml order), E2M1 code
//   scales uint8 [rows, cols/32]  E8M0: 2^(s - 127)
// value = e2m1(code) * 2^(s - 127)
struct Mxfp4Data {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> packed;
  std::vector<uint8_t> scales;
};

// The spec's scale rule: shared exponent = floor(log2(amax)) - 2 (2 = emax of E2M1, max 6 =
// 1.5 * 2^2), clamped to E8M0's [-127, 127]; an all-zero block gets exponent -127. Elements
// x / 2^e are rounded to nearest even E2M1 with saturation to +-6.
Mxfp4Data mxfp4_quantize(const float* w, int64_t rows, int64_t cols);

class Mxfp4Weight : public QuantWeight {
 public:
  // `packed`/`scales` point into a memory map (or into `owned`) that outlives the weight.
  Mxfp4Weight(int64_t rows, int64_t cols, const uint8_t* packed, const uint8_t* scales,
              Mxfp4Data owned = {});
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void dequant_row(int64_t r, float* out) const override;
  size_t nbytes() const override { return rows_ * cols_ / 2 + rows_ * cols_ / kMxfp4Block; }
  std::string format_name() const override { return "mxfp4"; }
  const uint8_t* packed() const { return packed_; }  // [rows, cols/2]
  const uint8_t* scales() const { return scales_; }  // [rows, cols/32]

 private:
  int64_t rows_, cols_;
  Mxfp4Data owned_;
  const uint8_t* packed_;
  const uint8_t* scales_;
};

}  // namespace nibble::quant

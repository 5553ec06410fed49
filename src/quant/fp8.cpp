#include "quant/fp8.h"

#include <algorithm>
#include <cmath>

#include "quant/minifloat.h"

namespace nibble::quant {

Fp8Data fp8_quantize(const float* w, int64_t rows, int64_t cols) {
  Fp8Data d;
  d.rows = rows;
  d.cols = cols;
  d.codes.resize(rows * cols);
  d.scales.resize(rows);
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
    const float scale = amax > 0 ? amax / 448.0f : 1.0f;
    d.scales[r] = scale;
    for (int64_t c = 0; c < cols; ++c) d.codes[r * cols + c] = e4m3_encode(w[r * cols + c] / scale);
  }
  return d;
}

Fp8Weight::Fp8Weight(int64_t rows, int64_t cols, const uint8_t* codes, const float* scales, Fp8Data owned)
    : rows_(rows), cols_(cols), owned_(std::move(owned)),
      codes_(owned_.codes.empty() ? codes : owned_.codes.data()),
      scales_(owned_.scales.empty() ? scales : owned_.scales.data()) {
  for (int i = 0; i < 256; ++i) lut_[i] = e4m3_decode(static_cast<uint8_t>(i));
}

void Fp8Weight::dequant_row(int64_t r, float* out) const {
  const uint8_t* p = codes_ + r * cols_;
  const float s = scales_[r];
  for (int64_t c = 0; c < cols_; ++c) out[c] = lut_[p[c]] * s;
}

}  // namespace nibble::quant

#include "quant/nvfp4.h"

#include <algorithm>
#include <cmath>

#include "quant/minifloat.h"

namespace nibble::quant {

Nvfp4Data nvfp4_quantize(const float* w, int64_t rows, int64_t cols) {
  Nvfp4Data d;
  d.rows = rows;
  d.cols = cols;
  d.packed.assign(rows * cols / 2, 0);
  d.scales.resize(rows * cols / kNvfp4Block);
  float tmax = 0;
  for (int64_t i = 0; i < rows * cols; ++i) tmax = std::max(tmax, std::fabs(w[i]));
  d.global = tmax > 0 ? tmax / (448.0f * 6.0f) : 1.0f;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / kNvfp4Block; ++b) {
      const float* x = w + r * cols + b * kNvfp4Block;
      float amax = 0;
      for (int i = 0; i < kNvfp4Block; ++i) amax = std::max(amax, std::fabs(x[i]));
      const uint8_t s = e4m3_encode(amax / 6.0f / d.global);
      d.scales[r * (cols / kNvfp4Block) + b] = s;
      const float step = e4m3_decode(s) * d.global;
      for (int i = 0; i < kNvfp4Block; ++i) {
        const uint8_t c = step > 0 ? e2m1_encode(x[i] / step) : 0;
        const int64_t col = b * kNvfp4Block + i;
        d.packed[r * (cols / 2) + col / 2] |= (col & 1) ? static_cast<uint8_t>(c << 4) : c;
      }
    }
  }
  return d;
}

Nvfp4Weight::Nvfp4Weight(int64_t rows, int64_t cols, const uint8_t* packed, const uint8_t* scales,
                         float global, Nvfp4Data owned)
    : rows_(rows), cols_(cols), owned_(std::move(owned)),
      packed_(owned_.packed.empty() ? packed : owned_.packed.data()),
      scales_(owned_.scales.empty() ? scales : owned_.scales.data()), global_(global) {}

void Nvfp4Weight::dequant_row(int64_t r, float* out) const {
  const uint8_t* p = packed_ + r * (cols_ / 2);
  const uint8_t* s = scales_ + r * (cols_ / kNvfp4Block);
  for (int64_t b = 0; b < cols_ / kNvfp4Block; ++b) {
    // (e2m1 * e4m3) is exact in fp32; one rounding for the global multiply.
    const float scale = e4m3_decode(s[b]);
    for (int i = 0; i < kNvfp4Block; i += 2) {
      const uint8_t byte = p[(b * kNvfp4Block + i) / 2];
      out[b * kNvfp4Block + i] = e2m1_decode(byte & 0xF) * scale * global_;
      out[b * kNvfp4Block + i + 1] = e2m1_decode(byte >> 4) * scale * global_;
    }
  }
}

}  // namespace nibble::quant

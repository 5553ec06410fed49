#include "quant/mxfp4.h"

#include <algorithm>
#include <cmath>

#include "quant/minifloat.h"

namespace nibble::quant {

Mxfp4Data mxfp4_quantize(const float* w, int64_t rows, int64_t cols) {
  Mxfp4Data d;
  d.rows = rows;
  d.cols = cols;
  d.packed.assign(rows * cols / 2, 0);
  d.scales.resize(rows * cols / kMxfp4Block);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / kMxfp4Block; ++b) {
      const float* x = w + r * cols + b * kMxfp4Block;
      float amax = 0;
      for (int i = 0; i < kMxfp4Block; ++i) amax = std::max(amax, std::fabs(x[i]));
      int e = amax > 0 ? floor_log2(amax) - 2 : -127;
      e = std::clamp(e, -127, 127);
      d.scales[r * (cols / kMxfp4Block) + b] = static_cast<uint8_t>(e + 127);
      for (int i = 0; i < kMxfp4Block; ++i) {
        // x / 2^e is exact in fp32 unless it underflows (then it is below any E2M1 step anyway).
        const uint8_t c = e2m1_encode(std::ldexp(x[i], -e));
        const int64_t col = b * kMxfp4Block + i;
        d.packed[r * (cols / 2) + col / 2] |= (col & 1) ? static_cast<uint8_t>(c << 4) : c;
      }
    }
  }
  return d;
}

Mxfp4Weight::Mxfp4Weight(int64_t rows, int64_t cols, const uint8_t* packed, const uint8_t* scales,
                         Mxfp4Data owned)
    : rows_(rows), cols_(cols), owned_(std::move(owned)),
      packed_(owned_.packed.empty() ? packed : owned_.packed.data()),
      scales_(owned_.scales.empty() ? scales : owned_.scales.data()) {}

void Mxfp4Weight::dequant_row(int64_t r, float* out) const {
  const uint8_t* p = packed_ + r * (cols_ / 2);
  const uint8_t* s = scales_ + r * (cols_ / kMxfp4Block);
  for (int64_t b = 0; b < cols_ / kMxfp4Block; ++b) {
    const float scale = e8m0_decode(s[b]);
    for (int i = 0; i < kMxfp4Block; i += 2) {
      const uint8_t byte = p[(b * kMxfp4Block + i) / 2];
      out[b * kMxfp4Block + i] = e2m1_decode(byte & 0xF) * scale;
      out[b * kMxfp4Block + i + 1] = e2m1_decode(byte >> 4) * scale;
    }
  }
}

}  // namespace nibble::quant

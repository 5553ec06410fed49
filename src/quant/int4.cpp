#include "quant/int4.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/dtype.h"

namespace nibble::quant {

Int4Weight::Int4Weight(Int4Data d, size_t file_bytes, std::string origin)
    : d_(std::move(d)), file_bytes_(file_bytes), origin_(std::move(origin)) {}

void Int4Weight::dequant_row(int64_t r, float* out) const {
  const uint8_t* codes = d_.codes.data() + r * ((d_.cols + 1) / 2);
  const float* scales = d_.scales.data() + r * d_.n_groups;
  const uint8_t* zeros = d_.zeros.data() + r * d_.n_groups;
  if (d_.g_idx.empty()) {
    for (int64_t c = 0; c < d_.cols; ++c) {
      const int64_t g = c / d_.group_size;
      const int q = (c & 1) ? (codes[c >> 1] >> 4) : (codes[c >> 1] & 0xF);
      out[c] = static_cast<float>(q - zeros[g]) * scales[g];
    }
  } else {
    for (int64_t c = 0; c < d_.cols; ++c) {
      const int64_t g = d_.g_idx[c];
      const int q = (c & 1) ? (codes[c >> 1] >> 4) : (codes[c >> 1] & 0xF);
      out[c] = static_cast<float>(q - zeros[g]) * scales[g];
    }
  }
}

std::string Int4Weight::format_name() const {
  const std::string g = d_.group_size >= d_.cols ? "ch" : fmt::format("g{}", d_.group_size);
  return fmt::format("int4-{}{}", g, d_.g_idx.empty() ? "" : "-actorder");
}

Int4Data int4_quantize_symmetric(const float* w, int64_t rows, int64_t cols, int group_size) {
  Int4Data d;
  d.rows = rows;
  d.cols = cols;
  d.group_size = group_size <= 0 ? static_cast<int>(cols) : group_size;
  d.n_groups = (cols + d.group_size - 1) / d.group_size;
  d.codes.assign(rows * ((cols + 1) / 2), 0);
  d.scales.resize(rows * d.n_groups);
  d.zeros.assign(rows * d.n_groups, 8);
  d.symmetric = true;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < d.n_groups; ++g) {
      const int64_t c0 = g * d.group_size, c1 = std::min(cols, c0 + d.group_size);
      float amax = 0;
      for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
      // The scale is stored as bf16, so quantize against the rounded value.
      float scale = bf16_to_f32(f32_to_bf16(amax / 7.5f));
      if (scale == 0) scale = 1.0f;  // an all-zero group: any scale gives codes of 0
      d.scales[r * d.n_groups + g] = scale;
      for (int64_t c = c0; c < c1; ++c) {
        float q = std::nearbyint(w[r * cols + c] / scale);
        q = std::clamp(q, -8.0f, 7.0f);
        const uint8_t u = static_cast<uint8_t>(static_cast<int>(q) + 8);
        d.codes[r * ((cols + 1) / 2) + c / 2] |= (c & 1) ? static_cast<uint8_t>(u << 4) : u;
      }
    }
  }
  return d;
}

}  // namespace nibble::quant

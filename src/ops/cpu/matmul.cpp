// y = x @ w^T on the CPU. The weights are what move (decode reads each once per step), so the
// loop streams over weight rows: a block of kRows weight rows is widened to fp32 once into a
// per-thread buffer and reused for every activation row of the current chunk, two activation
// rows at a time (2 x 4 accumulators fit the 16 AVX2 registers with room for the loads).
// Threads split the weight rows, never the reduction, so results do not depend on the thread
// count.
#include <algorithm>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define NIBBLE_AVX2 1
#endif

#include "ops/ops.h"

namespace nibble::ops {

namespace {

constexpr int kRows = 4;     // weight rows per block
constexpr int kMChunk = 32;  // activation rows per pass: keeps the x chunk in L2 for large k

#ifdef NIBBLE_AVX2
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Sums of `rows_x` (1 or 2) activation rows against 4 widened weight rows: y[i*4 + r].
template <int RowsX>
inline void kernel(const float* const* x, const float* w, int64_t k, float* y) {
  __m256 acc[RowsX][kRows];
  for (int i = 0; i < RowsX; ++i)
    for (int r = 0; r < kRows; ++r) acc[i][r] = _mm256_setzero_ps();
  int64_t l = 0;
  for (; l + 8 <= k; l += 8) {
    __m256 wv[kRows];
    for (int r = 0; r < kRows; ++r) wv[r] = _mm256_loadu_ps(w + r * k + l);
    for (int i = 0; i < RowsX; ++i) {
      const __m256 xv = _mm256_loadu_ps(x[i] + l);
      for (int r = 0; r < kRows; ++r) acc[i][r] = _mm256_fmadd_ps(xv, wv[r], acc[i][r]);
    }
  }
  for (int i = 0; i < RowsX; ++i)
    for (int r = 0; r < kRows; ++r) {
      float s = hsum(acc[i][r]);
      for (int64_t t = l; t < k; ++t) s += x[i][t] * w[r * k + t];
      y[i * kRows + r] = s;
    }
}
#else
template <int RowsX>
inline void kernel(const float* const* x, const float* w, int64_t k, float* y) {
  for (int i = 0; i < RowsX; ++i)
    for (int r = 0; r < kRows; ++r) {
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t l = 0; l < k; ++l) s += x[i][l] * w[r * k + l];
      y[i * kRows + r] = s;
    }
}
#endif

}  // namespace

void matmul(const float* x, const WeightView& w, const WeightView& bias, int m, float* y) {
  const int64_t n = w.rows, k = w.cols;
  std::vector<float> b;
  if (!bias.empty()) {
    b.resize(n);
    load_row(bias, 0, b.data());
  }
  const int64_t n_blocks = (n + kRows - 1) / kRows;
  for (int m0 = 0; m0 < m; m0 += kMChunk) {
    const int m1 = std::min(m, m0 + kMChunk);
#pragma omp parallel
    {
      std::vector<float> wbuf(kRows * k);  // [kRows, k] widened weights; zero rows past n
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < n_blocks; ++blk) {
        const int64_t r0 = blk * kRows;
        const int rows = static_cast<int>(std::min<int64_t>(kRows, n - r0));
        for (int r = 0; r < rows; ++r) load_row(w, r0 + r, wbuf.data() + r * k);
        if (rows < kRows) std::fill(wbuf.begin() + rows * k, wbuf.end(), 0.0f);
        float out[2 * kRows];
        for (int i = m0; i < m1; i += 2) {
          const float* xs[2] = {x + static_cast<int64_t>(i) * k, x + static_cast<int64_t>(i + 1) * k};
          const int nx = std::min(2, m1 - i);
          if (nx == 2) kernel<2>(xs, wbuf.data(), k, out);
          else kernel<1>(xs, wbuf.data(), k, out);
          for (int j = 0; j < nx; ++j) {
            float* yr = y + static_cast<int64_t>(i + j) * n + r0;
            for (int r = 0; r < rows; ++r) yr[r] = out[j * kRows + r] + (b.empty() ? 0.0f : b[r0 + r]);
          }
        }
      }
    }
  }
}

}  // namespace nibble::ops

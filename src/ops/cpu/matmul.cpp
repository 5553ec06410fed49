// y = x @ w^T on the CPU: the weights are what move (decode reads each once per step), so the
// loop streams over weight rows. A block of kRows weight rows is widened to fp32 once into a
// per-thread buffer and reused for every activation row of the current chunk. Threads split
// the weight rows, never the reduction, so results do not depend on the thread count.
#include <algorithm>
#include <vector>

#include "ops/ops.h"

namespace nibble::ops {

namespace {

constexpr int kRows = 4;     // weight rows per inner block: 4 accumulators per activation row
constexpr int kMChunk = 32;  // activation rows per pass: keeps the x chunk in L2 for large k

// Four dot products of one activation row against four widened weight rows.
inline void dot4(const float* __restrict x, const float* __restrict w, int64_t k, float* s) {
  const float* w0 = w;
  const float* w1 = w + k;
  const float* w2 = w + 2 * k;
  const float* w3 = w + 3 * k;
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t i = 0; i < k; ++i) {
    const float xv = x[i];
    s0 += xv * w0[i];
    s1 += xv * w1[i];
    s2 += xv * w2[i];
    s3 += xv * w3[i];
  }
  s[0] = s0;
  s[1] = s1;
  s[2] = s2;
  s[3] = s3;
}

inline float dot1(const float* __restrict x, const float* __restrict w, int64_t k) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < k; ++i) s += x[i] * w[i];
  return s;
}

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
      std::vector<float> wbuf(kRows * k);
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < n_blocks; ++blk) {
        const int64_t r0 = blk * kRows;
        const int rows = static_cast<int>(std::min<int64_t>(kRows, n - r0));
        for (int r = 0; r < rows; ++r) load_row(w, r0 + r, wbuf.data() + r * k);
        for (int i = m0; i < m1; ++i) {
          const float* xr = x + static_cast<int64_t>(i) * k;
          float* yr = y + static_cast<int64_t>(i) * n + r0;
          if (rows == kRows) {
            dot4(xr, wbuf.data(), k, yr);
          } else {
            for (int r = 0; r < rows; ++r) yr[r] = dot1(xr, wbuf.data() + r * k, k);
          }
          if (!b.empty())
            for (int r = 0; r < rows; ++r) yr[r] += b[r0 + r];
        }
      }
    }
  }
}

}  // namespace nibble::ops

// CPU ops against plain float64 references, on awkward sizes, fresh random inputs each time,
// outputs poisoned first. These references are what every other backend's ops test compares to.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "ops/ops.h"
#include "op_test_util.h"

namespace nibble::ops {
namespace {

using op_test::randn;
using op_test::rng;

std::vector<float> poisoned(size_t n) { return std::vector<float>(n, std::nanf("")); }

double nmse(const std::vector<float>& out, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

// Weights in the three stored dtypes; `values` gets what they widen to.
struct StoredWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
  WeightView view;
};
StoredWeight make_weight(DType dt, int64_t rows, int64_t cols) {
  StoredWeight w;
  auto v = randn(rows * cols, 0.5f);
  w.values.resize(v.size());
  w.bytes.resize(v.size() * dtype_size(dt));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dt == DType::kF32) {
      std::memcpy(w.bytes.data() + 4 * i, &v[i], 4);
      w.values[i] = v[i];
    } else {
      uint16_t h = dt == DType::kBF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
      std::memcpy(w.bytes.data() + 2 * i, &h, 2);
      w.values[i] = dt == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  w.view = WeightView{dt, rows, cols, w.bytes.data()};
  return w;
}

struct MatmulCase {
  int m;
  int64_t n, k;
  DType dt;
  bool bias;
};

class Matmul : public ::testing::TestWithParam<MatmulCase> {};

TEST_P(Matmul, MatchesFloat64) {
  const auto c = GetParam();
  auto w = make_weight(c.dt, c.n, c.k);
  auto b = make_weight(c.dt, 1, c.n);
  auto x = randn(static_cast<size_t>(c.m) * c.k);
  auto y = poisoned(static_cast<size_t>(c.m) * c.n);
  matmul(x.data(), w.view, c.bias ? b.view : WeightView{}, c.m, y.data());
  std::vector<double> ref(y.size());
  for (int i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double s = c.bias ? b.values[j] : 0.0;
      for (int64_t l = 0; l < c.k; ++l) s += static_cast<double>(x[i * c.k + l]) * w.values[j * c.k + l];
      ref[i * c.n + j] = s;
    }
  EXPECT_LT(nmse(y, ref), 1e-6);

  // The split is over output rows only, so one thread gives bit-identical results.
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  auto y1 = poisoned(y.size());
  matmul(x.data(), w.view, c.bias ? b.view : WeightView{}, c.m, y1.data());
  omp_set_num_threads(threads);
  EXPECT_EQ(0, std::memcmp(y.data(), y1.data(), y.size() * 4));
}

INSTANTIATE_TEST_SUITE_P(Sizes, Matmul,
                         ::testing::Values(MatmulCase{1, 1, 1, DType::kF32, false},
                                           MatmulCase{1, 17, 4160, DType::kBF16, true},
                                           MatmulCase{17, 4097, 33, DType::kBF16, false},
                                           MatmulCase{33, 259, 129, DType::kF16, true},
                                           MatmulCase{70, 31, 64, DType::kF32, true},
                                           MatmulCase{3, 1000, 1, DType::kBF16, false}));

TEST(Rmsnorm, MatchesFloat64WithAndWithoutPlusOne) {
  for (bool add_one : {false, true})
    for (int dim : {1, 17, 4097}) {
      const int n = 5;
      auto x = randn(static_cast<size_t>(n) * dim, 3.0f);
      auto w = make_weight(DType::kBF16, 1, dim);
      auto out = poisoned(x.size());
      rmsnorm(x.data(), w.view, n, dim, 1e-6f, add_one, out.data());
      std::vector<double> ref(x.size());
      for (int t = 0; t < n; ++t) {
        double ss = 0;
        for (int i = 0; i < dim; ++i) ss += static_cast<double>(x[t * dim + i]) * x[t * dim + i];
        const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
        for (int i = 0; i < dim; ++i) ref[t * dim + i] = x[t * dim + i] * inv * (w.values[i] + (add_one ? 1.0 : 0.0));
      }
      EXPECT_LT(nmse(out, ref), 1e-6) << "dim " << dim << " add_one " << add_one;
    }
}

TEST(Rope, RotatesHalvesByPositionTimesFrequency) {
  const int n = 7, heads = 3, hd = 10;
  auto x = randn(n * heads * hd);
  auto orig = x;
  std::vector<int32_t> pos = {0, 1, 5, 17, 100, 4097, 3};
  std::vector<float> inv_freq(hd / 2);
  for (int i = 0; i < hd / 2; ++i) inv_freq[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / hd));
  rope(x.data(), pos.data(), n, heads, hd, inv_freq.data());
  std::vector<double> ref(x.size());
  for (int t = 0; t < n; ++t)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        const double a = static_cast<double>(inv_freq[i]) * pos[t];
        const float* v = orig.data() + (t * heads + h) * hd;
        ref[(t * heads + h) * hd + i] = v[i] * std::cos(a) - v[i + hd / 2] * std::sin(a);
        ref[(t * heads + h) * hd + i + hd / 2] = v[i + hd / 2] * std::cos(a) + v[i] * std::sin(a);
      }
  EXPECT_LT(nmse(x, ref), 1e-5);
}

TEST(Activations, SiluAndGeluTanh) {
  const int n = 4097;
  auto g = randn(n, 3.0f), u = randn(n);
  auto a = poisoned(n), b = poisoned(n);
  silu_mul(g.data(), u.data(), n, a.data());
  gelu_tanh_mul(g.data(), u.data(), n, b.data());
  std::vector<double> ra(n), rb(n);
  for (int i = 0; i < n; ++i) {
    const double x = g[i];
    ra[i] = x / (1 + std::exp(-x)) * u[i];
    rb[i] = 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * u[i];
  }
  EXPECT_LT(nmse(a, ra), 1e-6);
  EXPECT_LT(nmse(b, rb), 1e-6);
}

// Paged attention with scattered blocks against contiguous attention in float64: several
// sequences at different positions, GQA, a sliding window, softcapping.
struct AttnCase {
  int n_heads, n_kv, hd, window;
  float softcap;
};
class PagedAttention : public ::testing::TestWithParam<AttnCase> {};

TEST_P(PagedAttention, MatchesContiguousFloat64) {
  const auto c = GetParam();
  const int bs = 16;
  const KvLayout layout{bs, c.n_kv, c.hd};
  // Sequences: (context length, queries at its end).
  const std::vector<std::pair<int, int>> seqs = {{1, 1}, {17, 17}, {70, 1}, {33, 5}};
  int total_blocks = 0;
  for (auto [ctx, nq] : seqs) total_blocks += (ctx + bs - 1) / bs;
  std::vector<int32_t> perm(total_blocks);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng());  // blocks land anywhere in the pool

  const int row = c.n_kv * c.hd;
  std::vector<float> k_cache(total_blocks * bs * row, NAN), v_cache(total_blocks * bs * row, NAN);
  std::vector<std::vector<int32_t>> tables;
  std::vector<std::vector<float>> ks, vs;  // contiguous copies [ctx, n_kv, hd]
  std::vector<AttnSeq> attn;
  std::vector<int32_t> positions;
  int next_block = 0, q_rows = 0;
  for (auto [ctx, nq] : seqs) {
    std::vector<int32_t> table;
    for (int b = 0; b < (ctx + bs - 1) / bs; ++b) table.push_back(perm[next_block++]);
    auto k = randn(ctx * row), v = randn(ctx * row);
    std::vector<int32_t> slots(ctx);
    for (int p = 0; p < ctx; ++p) slots[p] = table[p / bs] * bs + p % bs;
    kv_write(k.data(), v.data(), slots.data(), ctx, layout, k_cache.data(), v_cache.data());
    tables.push_back(table);
    ks.push_back(k);
    vs.push_back(v);
    for (int i = 0; i < nq; ++i) positions.push_back(ctx - nq + i);
    attn.push_back({q_rows, nq, nullptr});
    q_rows += nq;
  }
  for (size_t s = 0; s < seqs.size(); ++s) attn[s].block_table = tables[s].data();

  auto q = randn(q_rows * c.n_heads * c.hd);
  auto out = poisoned(q.size());
  AttnParams p{c.n_heads, 1.0f / std::sqrt(static_cast<float>(c.hd)), c.softcap, c.window};
  paged_attention(q.data(), positions.data(), attn, k_cache.data(), v_cache.data(), layout, p, out.data());

  std::vector<double> ref(q.size());
  for (size_t s = 0; s < seqs.size(); ++s)
    for (int i = 0; i < attn[s].n_q; ++i) {
      const int t = attn[s].q_begin + i, pos = positions[t];
      for (int h = 0; h < c.n_heads; ++h) {
        const int kvh = h / (c.n_heads / c.n_kv);
        const int first = c.window ? std::max(0, pos - c.window + 1) : 0;
        std::vector<double> sc;
        double mx = -INFINITY;
        for (int j = first; j <= pos; ++j) {
          double d = 0;
          for (int e = 0; e < c.hd; ++e)
            d += static_cast<double>(q[(t * c.n_heads + h) * c.hd + e]) * ks[s][(j * c.n_kv + kvh) * c.hd + e];
          d *= p.scale;
          if (c.softcap > 0) d = c.softcap * std::tanh(d / c.softcap);
          sc.push_back(d);
          mx = std::max(mx, d);
        }
        double sum = 0;
        for (auto& v : sc) sum += (v = std::exp(v - mx));
        for (int e = 0; e < c.hd; ++e) {
          double acc = 0;
          for (int j = first; j <= pos; ++j) acc += sc[j - first] * vs[s][(j * c.n_kv + kvh) * c.hd + e];
          ref[(t * c.n_heads + h) * c.hd + e] = acc / sum;
        }
      }
    }
  EXPECT_LT(nmse(out, ref), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Shapes, PagedAttention,
                         ::testing::Values(AttnCase{4, 4, 16, 0, 0.0f}, AttnCase{6, 2, 24, 0, 0.0f},
                                           AttnCase{8, 1, 64, 9, 0.0f}, AttnCase{4, 2, 32, 0, 5.0f}));

}  // namespace
}  // namespace nibble::ops

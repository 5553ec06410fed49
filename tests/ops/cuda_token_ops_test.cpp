// The small per-token CUDA ops (src/ops/cuda/token_ops.cu) against their CPU twins: softcap_f32
// (ops::softcap), add_bias (fp32 add, then bf16), gather_rows (exact copy), act_mul_fused
// (ops::silu_mul / ops::gelu_tanh_mul on the two halves). Awkward sizes, outputs poisoned first.
#include <gtest/gtest.h>

#ifndef NIBBLE_HAVE_CUDA

TEST(CudaTokenOps, Skipped) { GTEST_SKIP() << "built without the CUDA backend (NIBBLE_CUDA=OFF or no nvcc)"; }

#else

#include <cmath>
#include <random>
#include <vector>

#include "cuda_test_util.h"
#include "op_test_util.h"
#include "ops/cuda/elementwise.h"
#include "ops/ops.h"

namespace nibble::cuda {
namespace {

using op_test::randn;
using op_test::rng;
using namespace test;

TEST(CudaTokenOps, SoftcapF32) {
  NB_REQUIRE_GPU();
  for (int64_t n : {1, 17, 4097, 262147}) {
    auto x = randn(n, 40.0f);
    std::vector<float> ref = x;
    ops::softcap(ref.data(), n, 30.0f);
    auto d = to_device(st, x);
    ASSERT_TRUE(softcap_f32(d.get(), n, 30.0f, st).is_ok());
    const double err = rel_err(to_host(st, d), ref);
    EXPECT_LT(err, 1e-6) << "n=" << n;
  }
  EXPECT_EQ(softcap_f32(nullptr, 1, 0.0f, st).code(), StatusCode::kInvalidArgument);
}

TEST(CudaTokenOps, AddBias) {
  NB_REQUIRE_GPU();
  for (auto [T, n] : {std::pair{1, 1}, {3, 17}, {17, 4097}, {5, 896}}) {
    std::vector<float> yw;
    const auto yb = to_bf16(randn(static_cast<size_t>(T) * n), &yw);
    const auto bias = randn(n);
    std::vector<float> ref(yw.size());
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < n; ++j) ref[t * n + j] = bf16_to_f32(f32_to_bf16(yw[t * n + j] + bias[j]));
    auto y = to_device(st, yb);
    auto b = to_device(st, bias);
    ASSERT_TRUE(add_bias(y.get(), b.get(), T, n, st).is_ok());
    const auto out = widen(to_host(st, y));
    int64_t bad = 0;
    for (size_t i = 0; i < ref.size(); ++i) bad += out[i] != ref[i];
    EXPECT_EQ(bad, 0) << "T=" << T << " n=" << n;  // one fp32 add, one rounding: exact
  }
}

TEST(CudaTokenOps, GatherRows) {
  NB_REQUIRE_GPU();
  for (auto [n_src, dim, n_rows] : {std::tuple{5, 1, 3}, {40, 17, 7}, {100, 4096, 33}, {9, 24, 9}}) {
    const auto xb = to_bf16(randn(static_cast<size_t>(n_src) * dim));
    std::uniform_int_distribution<int> pick(0, n_src - 1);
    std::vector<int32_t> rows(n_rows);
    for (auto& r : rows) r = pick(rng());
    auto x = to_device(st, xb);
    auto r = to_device(st, rows);
    auto out = to_device(st, std::vector<uint16_t>(static_cast<size_t>(n_rows) * dim, kBf16Nan));
    ASSERT_TRUE(gather_rows(x.get(), r.get(), n_rows, dim, out.get(), st).is_ok());
    const auto o = to_host(st, out);
    int64_t bad = 0;
    for (int i = 0; i < n_rows; ++i)
      for (int j = 0; j < dim; ++j) bad += o[static_cast<size_t>(i) * dim + j] != xb[static_cast<size_t>(rows[i]) * dim + j];
    EXPECT_EQ(bad, 0) << "dim=" << dim;
  }
}

TEST(CudaTokenOps, ActMulFused) {
  NB_REQUIRE_GPU();
  for (bool gelu : {false, true})
    for (auto [T, f] : {std::pair{1, 8}, {3, 17}, {17, 1000}, {2, 14336}}) {
      std::vector<float> gw;
      const auto gb = to_bf16(randn(static_cast<size_t>(T) * 2 * f, 2.0f), &gw);
      std::vector<float> ref(static_cast<size_t>(T) * f);
      for (int t = 0; t < T; ++t) {
        const float* g = gw.data() + static_cast<size_t>(t) * 2 * f;
        float* o = ref.data() + static_cast<size_t>(t) * f;
        if (gelu) ops::gelu_tanh_mul(g, g + f, f, o);
        else ops::silu_mul(g, g + f, f, o);
      }
      auto d = to_device(st, gb);
      auto out = to_device(st, std::vector<uint16_t>(ref.size(), kBf16Nan));
      ASSERT_TRUE(act_mul_fused(d.get(), T, f, gelu, out.get(), st).is_ok());
      const double err = rel_err(widen(to_host(st, out)), ref);
      EXPECT_LT(err, 1e-2) << "gelu=" << gelu << " T=" << T << " f=" << f;
    }
}

// The interleaved-by-8 layout of a gate|up weight packed for the GEMV's gated epilogue (the
// prefill path's GEMM writes it): columns [16i, 16i + 8) gate [8i, 8i + 8), the next 8 up.
TEST(CudaTokenOps, ActMulFusedInterleaved) {
  NB_REQUIRE_GPU();
  for (bool gelu : {false, true})
    for (auto [T, f] : {std::pair{1, 8}, {3, 24}, {2, 14336}}) {
      std::vector<float> gw;
      const auto gb = to_bf16(randn(static_cast<size_t>(T) * 2 * f, 2.0f), &gw);
      std::vector<float> ref(static_cast<size_t>(T) * f);
      for (int t = 0; t < T; ++t)
        for (int j = 0; j < f; ++j) {
          const float* row = gw.data() + static_cast<size_t>(t) * 2 * f;
          const float g = row[16 * (j / 8) + j % 8], u = row[16 * (j / 8) + 8 + j % 8];
          (gelu ? ops::gelu_tanh_mul : ops::silu_mul)(&g, &u, 1, &ref[static_cast<size_t>(t) * f + j]);
        }
      auto d = to_device(st, gb);
      auto out = to_device(st, std::vector<uint16_t>(ref.size(), kBf16Nan));
      ASSERT_TRUE(act_mul_fused(d.get(), T, f, gelu, out.get(), st, /*interleaved8=*/true).is_ok());
      EXPECT_LT(rel_err(widen(to_host(st, out)), ref), 1e-2) << "gelu=" << gelu << " T=" << T << " f=" << f;
    }
  auto d = to_device(st, std::vector<uint16_t>(64));
  EXPECT_EQ(act_mul_fused(d.get(), 1, 12, false, d.get(), st, true).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace nibble::cuda

#endif  // NIBBLE_HAVE_CUDA

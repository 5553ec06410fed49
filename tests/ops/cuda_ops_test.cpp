// CUDA ops against their CPU twins (src/ops/cpu, src/quant dequantizers) on awkward sizes, fresh
// random inputs each time, outputs poisoned first, compared by ||out - ref|| / ||ref||. Where no
// GPU is present each GPU test says so and skips; the repacking tests run everywhere CUDA is built.
#include <gtest/gtest.h>

#ifndef NIBBLE_HAVE_CUDA

TEST(CudaOps, Skipped) { GTEST_SKIP() << "built without the CUDA backend (NIBBLE_CUDA=OFF or no nvcc)"; }

#else

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "ops/cuda/elementwise.h"
#include "ops/cuda/gemv_w4.h"
#include "ops/cuda/w4_compose.h"
#include "ops/ops.h"
#include "cuda_test_util.h"
#include "op_test_util.h"
#include "quant/int4.h"
#include "quant/mxfp4.h"
#include "quant/nf4.h"

namespace nibble::cuda {
namespace {

using op_test::randn;
using op_test::rng;

// ||out - ref|| / max(||ref||, den_floor).
template <class T>
double rel_err(const std::vector<T>& out, const std::vector<double>& ref, bool bf16, double den_floor = 0) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double o = bf16 ? bf16_to_f32(static_cast<uint16_t>(out[i])) : static_cast<double>(out[i]);
    if (!std::isfinite(o)) return INFINITY;  // poisoned (never written) or NaN
    num += (o - ref[i]) * (o - ref[i]);
    den += ref[i] * ref[i];
  }
  den = std::max(std::sqrt(den), den_floor);
  return den > 0 ? std::sqrt(num) / den : std::sqrt(num);
}
using test::kBf16Nan;
using test::to_bf16;
using test::to_device;
using test::to_host;
#define REQUIRE_GPU() NB_REQUIRE_GPU()

// ---- 4-bit weights: canonical quantized matrices and their fp32 dequantization ------------

// kNf4Half: NF4 with its absmax rounded to fp16 (w4_narrow_absmax), against the dequantizer
// given the rounded absmax.
enum class Kind { kNf4, kNf4Dq, kNf4Half, kInt4Sym, kInt4Zeros, kMxfp4 };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNf4: return "nf4";
    case Kind::kNf4Dq: return "nf4-dq";
    case Kind::kNf4Half: return "nf4-half";
    case Kind::kInt4Sym: return "int4-sym";
    case Kind::kInt4Zeros: return "int4-zeros";
    case Kind::kMxfp4: return "mxfp4";
  }
  return "?";
}

struct Quantized {
  W4Packed packed;
  std::vector<float> dq;  // [n, k] the canonical dequantizer's values
};

// `std`: the weights' spread (parts of one stacked weight drawn with different ones get different
// double-quantization offsets).
Quantized make_quantized(Kind kind, int64_t n, int64_t k, float std = 0.05f) {
  Quantized out;
  const auto w = randn(static_cast<size_t>(n * k), std);
  out.dq.resize(w.size());
  switch (kind) {
    case Kind::kNf4:
    case Kind::kNf4Dq:
    case Kind::kNf4Half: {
      auto q = quant::bnb4_quantize(w.data(), n * k, 64, quant::Bnb4Type::kNf4);
      std::vector<float> absmax = q.absmax;
      if (kind != Kind::kNf4Dq) {
        auto p = pack_nf4(q.packed.data(), n, k, 64, absmax.data());
        EXPECT_TRUE(p.is_ok()) << p.status().message();
        out.packed = std::move(p.value());
        if (kind == Kind::kNf4Half) {
          EXPECT_TRUE(w4_narrow_absmax(out.packed).is_ok());
          for (float& a : absmax) a = f16_to_f32(f32_to_f16(a));
        }
      } else {
        auto d = quant::double_quantize(q.absmax, 256);
        absmax = quant::double_dequantize(d.q.data(), static_cast<int64_t>(d.q.size()), d.nested_absmax.data(),
                                          256, quant::dynamic_map_signed().data(), d.offset);
        auto p = pack_nf4_double_quant(q.packed.data(), n, k, 64, d.q.data(), d.nested_absmax.data(), 256,
                                       d.offset, quant::dynamic_map_signed().data());
        EXPECT_TRUE(p.is_ok()) << p.status().message();
        out.packed = std::move(p.value());
      }
      quant::Bnb4Weight bw(n, k, 64, quant::Bnb4Type::kNf4, quant::bnb4_code(quant::Bnb4Type::kNf4),
                           q.packed.data(), absmax, 0);
      for (int64_t r = 0; r < n; ++r) bw.dequant_row(r, out.dq.data() + r * k);
      break;
    }
    case Kind::kInt4Sym:
    case Kind::kInt4Zeros: {
      quant::Int4Data d = quant::int4_quantize_symmetric(w.data(), n, k, 128);
      if (kind == Kind::kInt4Zeros) {
        // Asymmetric with fp16 scales, as GPTQ/AWQ store them: random zero points 0..15.
        std::uniform_int_distribution<int> z(0, 15);
        for (auto& v : d.zeros) v = static_cast<uint8_t>(z(rng()));
        for (auto& s : d.scales) s = f16_to_f32(f32_to_f16(s * 1.37f));
        d.symmetric = false;
      }
      quant::Int4Weight iw(d, 0, "test");
      for (int64_t r = 0; r < n; ++r) iw.dequant_row(r, out.dq.data() + r * k);
      auto p = pack_int4(d);
      EXPECT_TRUE(p.is_ok()) << p.status().message();
      out.packed = std::move(p.value());
      break;
    }
    case Kind::kMxfp4: {
      auto d = quant::mxfp4_quantize(w.data(), n, k);
      quant::Mxfp4Weight mw(n, k, d.packed.data(), d.scales.data());
      for (int64_t r = 0; r < n; ++r) mw.dequant_row(r, out.dq.data() + r * k);
      auto p = pack_mxfp4(d.packed.data(), d.scales.data(), n, k);
      EXPECT_TRUE(p.is_ok()) << p.status().message();
      out.packed = std::move(p.value());
      break;
    }
  }
  return out;
}

const Kind kAllKinds[] = {Kind::kNf4, Kind::kNf4Dq, Kind::kNf4Half, Kind::kInt4Sym, Kind::kInt4Zeros, Kind::kMxfp4};

// The repacked layout holds exactly the values the canonical dequantizers produce (no GPU).
TEST(CudaW4Pack, ReadsBackExactly) {
  for (Kind kind : kAllKinds)
    for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 128}, {17, 256}, {40, 384}}) {
      const Quantized q = make_quantized(kind, n, k);
      int64_t bad = 0;
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < k; ++c) bad += w4_packed_value(q.packed, r, c) != q.dq[r * k + c];
      EXPECT_EQ(bad, 0) << kind_name(kind) << " n=" << n << " k=" << k;
    }
}

// The gate|up interleave for the gated epilogue: row 16j + i of the result is gate row 8j + i and
// row 16j + 8 + i is up row 8j + i, every value exactly (no GPU). n = 8 and 24: halves of tiles.
TEST(CudaW4Pack, InterleaveGluReadsBack) {
  for (Kind kind : kAllKinds)
    for (auto [n, k] : {std::pair<int64_t, int64_t>{8, 256}, {24, 256}, {48, 256}, {24, 5120}}) {
      // K = 5120: 80 blocks a row, so a nested block of 256 straddles rows and the 8-row groups
      // of the interleaved layout (double quantization must index by each part's own rows).
      const Quantized gate = make_quantized(kind, n, k, 0.05f), up = make_quantized(kind, n, k, 0.4f);
      auto il = w4_interleave_glu(gate.packed, up.packed);
      ASSERT_TRUE(il.is_ok()) << il.status().message();
      ASSERT_EQ(il->n, 2 * n);
      int64_t bad = 0;
      for (int64_t r = 0; r < 2 * n; ++r) {
        const Quantized& part = (r % 16) < 8 ? gate : up;
        const int64_t src = (r / 16) * 8 + r % 8;
        for (int64_t c = 0; c < k; ++c) bad += w4_packed_value(*il, r, c) != part.dq[src * k + c];
      }
      EXPECT_EQ(bad, 0) << kind_name(kind) << " n=" << n << " k=" << k;
    }
  // A double-quantized weight that is already a composition has more than one offset a half.
  const Quantized dq = make_quantized(Kind::kNf4Dq, 16, 64), odd = make_quantized(Kind::kNf4, 12, 64);
  auto il = w4_interleave_glu(dq.packed, dq.packed);
  ASSERT_TRUE(il.is_ok());
  EXPECT_EQ(w4_interleave_glu(*il, *il).status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(w4_interleave_glu(odd.packed, odd.packed).status().code(), StatusCode::kInvalidArgument);
}

// Fused q/k/v of double-quantized NF4: each part keeps its own offset and nested absmax, read
// back exactly; parts that end inside a nested block of 256 absmax, or too many parts, are
// refused (the caller widens them to fp32 absmax).
std::vector<float> stacked_dq(std::initializer_list<const Quantized*> parts) {
  std::vector<float> all;
  for (const Quantized* p : parts) all.insert(all.end(), p->dq.begin(), p->dq.end());
  return all;
}
TEST(CudaW4Pack, ConcatDoubleQuantReadsBack) {
  for (auto [nq, nkv, k] : {std::tuple<int64_t, int64_t, int64_t>{64, 16, 2048}, {48, 32, 1024}, {32, 16, 5120}}) {
    const Quantized q = make_quantized(Kind::kNf4Dq, nq, k, 0.05f), kk = make_quantized(Kind::kNf4Dq, nkv, k, 0.8f),
                    v = make_quantized(Kind::kNf4Dq, nkv + 3, k, 6.0f);
    const W4Packed* parts[] = {&q.packed, &kk.packed, &v.packed};
    auto cat = w4_concat_rows(parts);
    ASSERT_TRUE(cat.is_ok()) << cat.status().message();
    ASSERT_TRUE(cat->flags & kW4DoubleQuant);
    const std::vector<float> want = stacked_dq({&q, &kk, &v});
    int64_t bad = 0;
    for (int64_t r = 0; r < cat->n; ++r)
      for (int64_t c = 0; c < k; ++c) bad += w4_packed_value(*cat, r, c) != want[r * k + c];
    EXPECT_EQ(bad, 0) << "q " << nq << " kv " << nkv << " k " << k;
    EXPECT_EQ(cat->stream_bytes, q.packed.stream_bytes + kk.packed.stream_bytes + v.packed.stream_bytes);
  }
  const Quantized a = make_quantized(Kind::kNf4Dq, 16, 512), b = make_quantized(Kind::kNf4Dq, 16, 512);
  const W4Packed* unaligned[] = {&a.packed, &b.packed};  // 16 rows x 8 blocks: half a nested block
  EXPECT_EQ(w4_concat_rows(unaligned).status().code(), StatusCode::kUnsupported);
  const Quantized c = make_quantized(Kind::kNf4Dq, 32, 2048);
  const W4Packed* five[] = {&c.packed, &c.packed, &c.packed, &c.packed, &c.packed};
  EXPECT_EQ(w4_concat_rows(five).status().code(), StatusCode::kUnsupported);
}

// Widening the absmax of a double-quantized weight (one tensor, stacked, interleaved) to fp32
// changes no value and keeps the format's byte count.
TEST(CudaW4Pack, WidenNestedReadsBack) {
  const Quantized a = make_quantized(Kind::kNf4Dq, 48, 5120, 0.05f), b = make_quantized(Kind::kNf4Dq, 48, 5120, 0.7f);
  const W4Packed* parts[] = {&a.packed, &b.packed};
  auto cat = w4_concat_rows(parts);
  auto il = w4_interleave_glu(a.packed, b.packed);
  ASSERT_TRUE(cat.is_ok() && il.is_ok());
  for (const W4Packed* w : std::initializer_list<const W4Packed*>{&a.packed, &*cat, &*il}) {
    auto wide = w4_widen_nested(*w);
    ASSERT_TRUE(wide.is_ok()) << wide.status().message();
    EXPECT_EQ(wide->flags, 0u);
    EXPECT_TRUE(wide->nested.empty());
    EXPECT_EQ(wide->stream_bytes, w->stream_bytes);
    int64_t bad = 0;
    for (int64_t r = 0; r < w->n; ++r)
      for (int64_t c = 0; c < w->k; ++c) bad += w4_packed_value(*wide, r, c) != w4_packed_value(*w, r, c);
    EXPECT_EQ(bad, 0) << "n=" << w->n;
  }
  EXPECT_EQ(w4_widen_nested(make_quantized(Kind::kNf4, 16, 64).packed).status().code(), StatusCode::kInvalidArgument);
}

// Rounding NF4 absmax to fp16: every value is the code times the fp16 rounding of its absmax (a
// weight, a stacked one, an interleaved one widened from double quantization), within 2^-11 of
// the fp32 form; zero and tiny absmax (fp16 subnormals) go through; one absmax above fp16's range
// is refused and leaves the weight as it was; double-quantized or already narrowed weights are
// not NF4 with fp32 absmax.
TEST(CudaW4Pack, NarrowAbsmaxReadsBack) {
  const Quantized a = make_quantized(Kind::kNf4Dq, 48, 5120, 0.05f), b = make_quantized(Kind::kNf4Dq, 48, 5120, 0.7f);
  auto il = w4_interleave_glu(a.packed, b.packed);
  ASSERT_TRUE(il.is_ok());
  auto il_wide = w4_widen_nested(*il);
  const Quantized plain = make_quantized(Kind::kNf4, 40, 384, 3.0f);
  ASSERT_TRUE(il_wide.is_ok());
  for (const W4Packed* w : std::initializer_list<const W4Packed*>{&plain.packed, &*il_wide}) {
    W4Packed half = *w;
    ASSERT_TRUE(w4_narrow_absmax(half).is_ok());
    EXPECT_EQ(half.flags, w->flags | kW4ScaleF16);
    EXPECT_EQ(half.scales.size(), w->scales.size() / 2);
    EXPECT_EQ(half.stream_bytes, w->stream_bytes);
    int64_t bad = 0;
    double worst = 0;
    for (int64_t r = 0; r < w->n; ++r)
      for (int64_t c = 0; c < w->k; c += 7) {
        const int64_t rt = r / 16, g = r % 8, hf = (r % 16) / 8, u = c / 64;
        const float full = w4_nf4_absmax(*w, rt, u, static_cast<int>(g), static_cast<int>(hf));
        const float rounded = f16_to_f32(f32_to_f16(full));
        bad += w4_nf4_absmax(half, rt, u, static_cast<int>(g), static_cast<int>(hf)) != rounded;
        const float v = w4_packed_value(*w, r, c), vh = w4_packed_value(half, r, c);
        if (v != 0) worst = std::max(worst, std::abs(static_cast<double>(vh) / v - 1));
      }
    EXPECT_EQ(bad, 0) << "n=" << w->n;
    EXPECT_LE(worst, std::ldexp(1.0, -11)) << "n=" << w->n;
  }
  // Zero and fp16-subnormal absmax, then one too large for fp16.
  const uint8_t codes[2 * 64 / 2] = {0x7F, 0xF7};
  std::vector<float> absmax = {0.0f, 3e-7f};
  auto tiny = pack_nf4(codes, 2, 64, 64, absmax.data());
  ASSERT_TRUE(tiny.is_ok());
  ASSERT_TRUE(w4_narrow_absmax(*tiny).is_ok());
  EXPECT_EQ(w4_nf4_absmax(*tiny, 0, 0, 0, 0), 0.0f);
  EXPECT_NEAR(w4_nf4_absmax(*tiny, 0, 0, 1, 0), 3e-7f, std::ldexp(1.0, -25));
  absmax = {1.0f, 70000.0f};
  auto big = pack_nf4(codes, 2, 64, 64, absmax.data());
  ASSERT_TRUE(big.is_ok());
  const std::vector<uint8_t> before = big->scales;
  const Status refused = w4_narrow_absmax(*big);
  EXPECT_EQ(refused.code(), StatusCode::kUnsupported);
  EXPECT_NE(refused.message().find("70000"), std::string::npos) << refused.message();
  EXPECT_EQ(big->scales, before);
  EXPECT_EQ(big->flags, 0u);
  W4Packed dq = a.packed;
  EXPECT_EQ(w4_narrow_absmax(dq).code(), StatusCode::kInvalidArgument);
  W4Packed twice = *tiny;
  EXPECT_EQ(w4_narrow_absmax(twice).code(), StatusCode::kInvalidArgument);
}

// The default configuration rules (no GPU: the device is described): NF4 with fp16 absmax takes
// entry 44 at 9-16 rows on sm_90 (measured end to end, docs/kernels.md "Session 13"), the fp32 and
// double-quantized forms keep entry 45, and the rules for other rows and formats do not move.
TEST(CudaW4Pack, DefaultConfigFollowsTheAbsmaxForm) {
  DeviceInfo h200;
  h200.cc_major = 9;
  h200.sm_count = 132;
  DeviceInfo a100 = h200;
  a100.cc_major = 8;
  for (int m : {9, 13, 16}) {
    EXPECT_EQ(gemv_default_config(h200, W4Format::kNf4, m, 4096, 4096, kW4ScaleF16), 44) << m;
    EXPECT_EQ(gemv_default_config(h200, W4Format::kNf4, m, 4096, 4096, 0), 45) << m;
    EXPECT_EQ(gemv_default_config(h200, W4Format::kNf4, m, 4096, 4096, kW4DoubleQuant), 45) << m;
    EXPECT_EQ(gemv_default_config(a100, W4Format::kNf4, m, 4096, 4096, kW4ScaleF16),
              gemv_v4_default_config(a100, W4Format::kNf4, m)) << m;
    EXPECT_EQ(gemv_default_config(h200, W4Format::kInt4, m, 4096, 4096, kW4ScaleF16),
              gemv_v4_default_config(h200, W4Format::kInt4, m)) << m;
  }
  for (int m : {1, 8, 17, 32})
    EXPECT_EQ(gemv_default_config(h200, W4Format::kNf4, m, 4096, 4096, kW4ScaleF16),
              gemv_default_config(h200, W4Format::kNf4, m, 4096, 4096, 0)) << m;
}

// The run kernel at one row where NF4's v4 default (entry 37: one row tile a block, 4 blocks a SM)
// would spill into a second wave: more than 4 * SMs row tiles of 16 (docs/kernels.md "Session 15").
TEST(CudaW4Pack, RunKernelWhereTheV4GridSpillsAWave) {
  DeviceInfo h200;
  h200.cc_major = 9;
  h200.sm_count = 132;
  const int v4 = gemv_v4_default_config(h200, W4Format::kNf4, 1);
  ASSERT_NE(v4, 58);
  EXPECT_EQ(gemv_default_config(h200, W4Format::kNf4, 1, 10240, 8192, kW4ScaleF16), 58);  // 640 tiles > 528
  EXPECT_EQ(gemv_default_config(h200, W4Format::kNf4, 1, 10240, 5120, kW4ScaleF16), 58);  // Qwen3-32B qkv
  EXPECT_EQ(gemv_default_config(h200, W4Format::kNf4, 1, 8448, 8192, kW4ScaleF16), v4);   // 528 tiles: one wave
  EXPECT_EQ(gemv_default_config(h200, W4Format::kNf4, 1, 8192, 8192, kW4ScaleF16), v4);   // Llama-3.3-70B o
  EXPECT_EQ(gemv_default_config(h200, W4Format::kNf4, 1, 4096, 14336, kW4ScaleF16), v4);  // Llama-3-8B down
  EXPECT_EQ(gemv_default_config(h200, W4Format::kNf4, 1, 10240, 8192 + 64, kW4ScaleF16), v4);  // K % 256 != 0
  DeviceInfo twice = h200;  // a GPU with twice the SMs holds those 640 tiles in one wave
  twice.sm_count = 264;
  EXPECT_EQ(gemv_default_config(twice, W4Format::kNf4, 1, 10240, 8192, kW4ScaleF16), v4);
  // MXFP4's one-row default has 4-warp blocks and a K split: the rule does not apply (entry 5).
  EXPECT_EQ(gemv_default_config(h200, W4Format::kMxfp4, 1, 10240, 8192, 0), 5);
  DeviceInfo a100 = h200;
  a100.cc_major = 8;
  EXPECT_NE(gemv_default_config(a100, W4Format::kNf4, 1, 10240, 8192, kW4ScaleF16), 58);
}

TEST(CudaW4Pack, TypedFailures) {
  std::vector<uint8_t> packed(4096);
  std::vector<float> absmax(64, 1.0f);
  auto r = pack_nf4(packed.data(), 2, 100, 64, absmax.data());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("K must be a multiple of 64, got 100"), std::string::npos);
  quant::Int4Data d = quant::int4_quantize_symmetric(randn(4 * 192).data(), 4, 192, 64);
  auto i = pack_int4(d);
  ASSERT_FALSE(i.is_ok());
  EXPECT_EQ(i.status().code(), StatusCode::kUnsupported);
}

struct GemvCase {
  int m;
  int64_t n, k;
};

// y = x @ dq^T in double, x already widened from bf16.
std::vector<double> ref_gemv(const std::vector<float>& x, const std::vector<float>& dq, int m, int64_t n, int64_t k) {
  std::vector<double> y(static_cast<size_t>(m * n));
  for (int i = 0; i < m; ++i)
    for (int64_t r = 0; r < n; ++r) {
      double s = 0;
      const float* w = dq.data() + r * k;
      const float* xr = x.data() + i * k;
      for (int64_t c = 0; c < k; ++c) s += static_cast<double>(xr[c]) * w[c];
      y[i * n + r] = s;
    }
  return y;
}

// sqrt(sum over outputs and columns of (x w)^2): the size of a dot product's rounding error is
// set by its terms, so with a handful of outputs one that cancels to near zero cannot make a
// correct GEMV look wrong when the error is measured against max(||ref||, this).
double term_norm(const std::vector<float>& x, const std::vector<float>& dq, int m, int64_t n, int64_t k) {
  double s = 0;
  for (int i = 0; i < m; ++i)
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < k; ++c) {
        const double t = static_cast<double>(x[i * k + c]) * dq[r * k + c];
        s += t * t;
      }
  return std::sqrt(s);
}

// One GEMV of fresh random bf16 activations (widened into *xw) into a poisoned y of m x n_out.
Result<std::vector<uint16_t>> run_gemv(Stream& st, const W4Device& w, int m, int64_t n_out, int config, W4Epilogue ep,
                                       std::vector<float>* xw) {
  auto x = to_device(st, to_bf16(randn(static_cast<size_t>(m * w.k)), xw));
  auto y = to_device(st, std::vector<uint16_t>(static_cast<size_t>(m * n_out), kBf16Nan));
  NB_TRY(gemv_w4(w, x.get(), m, y.get(), st, config, ep));
  return to_host(st, y);
}

void check_gemv(Stream& st, Kind kind, int64_t n, int64_t k, const std::vector<int>& ms, int config = -1) {
  if (config >= 0 && !gemv_config_runs_on(config, st.info())) return;  // wg entries: sm_90a only
  const Quantized q = make_quantized(kind, n, k);
  auto dev = upload(q.packed, st);
  ASSERT_TRUE(dev.is_ok()) << dev.status().message();
  for (int m : ms) {
    if (config >= 0 && !gemv_config_fits(config, m)) continue;
    std::vector<float> xw;
    auto out = run_gemv(st, dev.value(), m, n, config, W4Epilogue::kNone, &xw);
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    const bool few = m * n < 64;
    const double err = rel_err(*out, ref_gemv(xw, q.dq, m, n, k), true, few ? term_norm(xw, q.dq, m, n, k) : 0.0);
    // bf16 output rounding ~2e-3; NF4 code values rounded to bf16 add about as much. With a
    // handful of outputs one unlucky cancellation in a dot product dominates the ratio (hence
    // the term norm as the least denominator, and a looser bound below 64 outputs).
    EXPECT_LT(err, few ? 3e-2 : 1e-2) << kind_name(kind) << " M=" << m << " N=" << n << " K=" << k << " config=" << config;
  }
}

class CudaGemvW4Kind : public ::testing::TestWithParam<Kind> {};

TEST_P(CudaGemvW4Kind, AwkwardSizes) {
  REQUIRE_GPU();
  const Kind kind = GetParam();
  const bool int4 = kind == Kind::kInt4Sym || kind == Kind::kInt4Zeros;
  for (int64_t n : {1, 17, 4097})
    for (int64_t k : {int4 ? 128 : 64, int4 ? 4224 : 4160}) check_gemv(st, kind, n, k, {1, 3, 8, 17, 32});
}

// Small N with long K: the row tiles alone cannot fill the GPU, so split-K engages.
TEST_P(CudaGemvW4Kind, SplitK) {
  REQUIRE_GPU();
  check_gemv(st, GetParam(), 33, 16384, {1, 5, 32});
}

INSTANTIATE_TEST_SUITE_P(Formats, CudaGemvW4Kind, ::testing::ValuesIn(kAllKinds),
                         [](const ::testing::TestParamInfo<Kind>& i) {
                           std::string n = kind_name(i.param);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// Every configuration in the table, not only the defaults: the benchmark may pick any of them.
TEST(CudaGemvW4, EveryConfiguration) {
  REQUIRE_GPU();
  for (int c = 0; c < gemv_config_count(); ++c)
    for (Kind kind : {Kind::kNf4Dq, Kind::kNf4Half, Kind::kInt4Zeros, Kind::kMxfp4})
      check_gemv(st, kind, 300, 2048, {1, 8, 13, 32}, c);
}

// Every configuration whose name contains `tag`, every format, on shapes {N, K, K for INT4} (INT4
// needs K % 128 == 0) at the rows `ms`.
struct TaggedShape {
  int64_t n, k, k_int4;
};
void check_tagged_configs(Stream& st, const std::string& tag, std::initializer_list<TaggedShape> shapes,
                          const std::vector<int>& ms) {
  for (int c = 0; c < gemv_config_count(); ++c) {
    if (gemv_config_name(c).find(tag) == std::string::npos) continue;
    for (Kind kind : kAllKinds) {
      const bool int4 = kind == Kind::kInt4Sym || kind == Kind::kInt4Zeros;
      for (const TaggedShape& sh : shapes) check_gemv(st, kind, sh.n, int4 ? sh.k_int4 : sh.k, ms, c);
    }
  }
}

// The run configurations (gemv_w4_run.cuh) on the shapes EveryConfiguration misses: a weight with
// fewer 4-unit groups than the wave has warps (one tile; one group a tile), tiles cut between
// warps with N % 16 != 0, runs covering several whole tiles, and K % 256 != 0 (the v4 kernel
// takes over).
TEST(CudaGemvW4, RunShapes) {
  REQUIRE_GPU();
  check_tagged_configs(st, "_run",
                       {{1, 256, 256}, {4097, 256, 256}, {17, 4352, 4352}, {4097, 4352, 4352}, {20000, 512, 512},
                        {33, 192, 384}},
                       {1, 3, 8});
}

// The staged-activation configurations (xs, M 17-32) on the shapes EveryConfiguration misses: a
// K range that ends inside a group of 4 units (a part-filled stage), one unit, M just past a tile
// of 8 tokens (rows of the stage left uncopied), N % 16 != 0, and a K long enough for split-K with
// many groups a split.
TEST(CudaGemvW4, StagedActivationShapes) {
  REQUIRE_GPU();
  check_tagged_configs(st, "_xs", {{16, 64, 128}, {33, 320, 384}, {4097, 1408, 1408}, {130, 14336, 14336}}, {17, 31, 32});
}

// The warpgroup (wgmma) configurations on the shapes EveryConfiguration misses: one unit and one
// row tile (three warps of the warpgroup without rows), a block whose second warpgroup has no rows
// at all, a K range ending inside a group of 4 units (a part-filled stage), M just past a tile of
// 8 tokens (stage rows left unwritten), N % 16 != 0, split-K over many groups, and K long enough
// to cycle the two stages many times. Skipped where the device is not sm_90.
TEST(CudaGemvW4, WarpgroupShapes) {
  REQUIRE_GPU();
  check_tagged_configs(st, "_wg",
                       {{16, 64, 128}, {48, 256, 256}, {33, 320, 384}, {4097, 1408, 1408}, {130, 14336, 14336},
                        {1000, 4096, 4096}},
                       {1, 5, 8, 9, 16, 17, 31, 32});
}

// The gated epilogue (gate/up interleaved, act(gate) * up written by the GEMV) against the same
// reference as the plain GEMV followed by the CPU activation: every configuration (v4 and run
// kernels, split-K included), silu and gelu_tanh, every format that interleaves.
void check_gemv_glu(Stream& st, Kind kind, int64_t f, int64_t k, const std::vector<int>& ms, int config, bool gelu) {
  if (config >= 0 && !gemv_config_runs_on(config, st.info())) return;
  const Quantized gate = make_quantized(kind, f, k, 0.05f), up = make_quantized(kind, f, k, 0.3f);
  auto il = w4_interleave_glu(gate.packed, up.packed);
  ASSERT_TRUE(il.is_ok()) << il.status().message();
  auto dev = upload(*il, st);
  ASSERT_TRUE(dev.is_ok()) << dev.status().message();
  for (int m : ms) {
    if (config >= 0 && !gemv_config_fits(config, m)) continue;
    std::vector<float> xw;
    auto out = run_gemv(st, dev.value(), m, f, config, gelu ? W4Epilogue::kGeluTanhMul : W4Epilogue::kSiluMul, &xw);
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    const auto g = ref_gemv(xw, gate.dq, m, f, k), u = ref_gemv(xw, up.dq, m, f, k);
    std::vector<double> ref(g.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      float a = 0;
      const float gf = static_cast<float>(g[i]), uf = static_cast<float>(u[i]);
      (gelu ? ops::gelu_tanh_mul : ops::silu_mul)(&gf, &uf, 1, &a);
      ref[i] = a;
    }
    const double err = rel_err(*out, ref, true);
    EXPECT_LT(err, 2e-2) << kind_name(kind) << (gelu ? " gelu" : " silu") << " M=" << m << " F=" << f << " K=" << k
                         << " config=" << config;
  }
}

TEST(CudaGemvW4, GatedEpilogue) {
  REQUIRE_GPU();
  for (int c = -1; c < gemv_config_count(); ++c)
    for (Kind kind : {Kind::kNf4, Kind::kNf4Dq, Kind::kNf4Half, Kind::kInt4Zeros, Kind::kMxfp4})
      check_gemv_glu(st, kind, 152, 2048, {1, 8, 13, 32}, c, c % 2 == 0);
  // Defaults on a split-K shape, a large layer (the run kernel by default at M <= 8 on sm_90) and
  // the stacked fallback's act_mul_fused over the interleaved layout.
  for (Kind kind : {Kind::kNf4, Kind::kNf4Dq, Kind::kNf4Half, Kind::kInt4Sym, Kind::kMxfp4}) {
    check_gemv_glu(st, kind, 24, 16384, {1, 5, 32}, -1, false);
    check_gemv_glu(st, kind, 14336, 4096, {1, 3}, -1, true);
  }
}

// Fused q/k/v of double-quantized NF4 parts with different offsets (W4DqParts): every
// configuration on a small stack, and the defaults where the run kernel (M <= 8) and the
// staged-activation kernel (M 17-32) take a large one on sm_90.
void check_gemv_stacked_dq(Stream& st, int64_t nq, int64_t nkv, int64_t k, const std::vector<int>& ms, int config) {
  const Quantized q = make_quantized(Kind::kNf4Dq, nq, k, 0.05f), kk = make_quantized(Kind::kNf4Dq, nkv, k, 0.5f),
                  v = make_quantized(Kind::kNf4Dq, nkv, k, 3.0f);
  const W4Packed* parts[] = {&q.packed, &kk.packed, &v.packed};
  auto cat = w4_concat_rows(parts);
  ASSERT_TRUE(cat.is_ok()) << cat.status().message();
  auto dev = upload(*cat, st);
  ASSERT_TRUE(dev.is_ok()) << dev.status().message();
  const std::vector<float> dq = stacked_dq({&q, &kk, &v});
  for (int m : ms) {
    if (config >= 0 && !gemv_config_fits(config, m)) continue;
    std::vector<float> xw;
    auto out = run_gemv(st, dev.value(), m, cat->n, config, W4Epilogue::kNone, &xw);
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    // Each part against its own reference: a wrong offset in the small-valued q part would hide
    // behind v's larger values in one norm over the whole output.
    const auto ref = ref_gemv(xw, dq, m, cat->n, k);
    const int64_t ends[] = {0, nq, nq + nkv, nq + 2 * nkv};
    for (int part = 0; part < 3; ++part) {
      std::vector<uint16_t> o;
      std::vector<double> r;
      for (int i = 0; i < m; ++i)
        for (int64_t j = ends[part]; j < ends[part + 1]; ++j) {
          o.push_back((*out)[i * cat->n + j]);
          r.push_back(ref[i * cat->n + j]);
        }
      EXPECT_LT(rel_err(o, r, true), 1e-2) << "part " << part << " M=" << m << " K=" << k << " config=" << config;
    }
  }
}

TEST(CudaGemvW4, StackedDoubleQuantParts) {
  REQUIRE_GPU();
  for (int c = -1; c < gemv_config_count(); ++c) check_gemv_stacked_dq(st, 64, 32, 2048, {1, 8, 13, 32}, c);
  // 59 M weights with K > N: the run kernel at 3 rows, staged activations at 32 (sm_90 defaults)
  check_gemv_stacked_dq(st, 2560, 512, 16384, {1, 3, 32}, -1);
}

TEST(CudaGemvW4, TypedFailures) {
  REQUIRE_GPU();
  const Quantized q = make_quantized(Kind::kNf4, 16, 64);
  auto dev = upload(q.packed, st);
  ASSERT_TRUE(dev.is_ok());
  auto x = to_device(st, std::vector<uint16_t>(33 * 64, 0x3F80));
  auto y = to_device(st, std::vector<uint16_t>(33 * 16));
  const Status s = gemv_w4(dev.value(), x.get(), 33, y.get(), st);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  const Quantized q8 = make_quantized(Kind::kNf4, 8, 64);  // 8 rows: no whole gate|up tile
  auto dev8 = upload(q8.packed, st);
  ASSERT_TRUE(dev8.is_ok());
  EXPECT_EQ(gemv_w4(dev8.value(), x.get(), 1, y.get(), st, -1, W4Epilogue::kSiluMul).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gemv_int4(dev.value(), x.get(), 1, y.get(), st).code(), StatusCode::kInvalidArgument);
}

TEST(CudaDevice, OutOfMemoryNamesTheSizes) {
  REQUIRE_GPU();
  auto r = st.pool().alloc(size_t{1} << 50, st.get());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(r.status().message().find("needed"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("free"), std::string::npos) << r.status().message();
  auto ok = st.pool().alloc(1024, st.get());  // the pool still works afterwards
  ASSERT_TRUE(ok.is_ok()) << ok.status().message();
  st.pool().free(ok.value(), st.get());
}

// ---- per-token ops against ops/cpu -------------------------------------------------------

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

TEST(CudaElementwise, RmsnormFusedResidual) {
  REQUIRE_GPU();
  for (int n : {1, 3, 17})
    for (int dim : {64, 4096, 4097, 8192})
      for (bool with_residual : {false, true})
        for (bool add_one : {false, true}) {
          std::vector<float> xw, rw, ww;
          const auto xb = to_bf16(randn(static_cast<size_t>(n) * dim), &xw);
          const auto rb = to_bf16(randn(static_cast<size_t>(n) * dim), &rw);
          const auto wb = to_bf16(randn(dim, 0.5f), &ww);
          std::vector<float> h(xw);
          if (with_residual)
            for (size_t i = 0; i < h.size(); ++i) h[i] += rw[i];
          std::vector<float> ref(h.size());
          ops::rmsnorm(h.data(), ops::WeightView{DType::kBF16, 1, dim, wb.data()}, n, dim, 1e-6f, add_one, ref.data());
          auto x = to_device(st, xb), r = to_device(st, rb), w = to_device(st, wb);
          auto out = to_device(st, std::vector<uint16_t>(xb.size(), kBf16Nan));
          auto res_out = to_device(st, std::vector<uint16_t>(xb.size(), kBf16Nan));
          ASSERT_TRUE(rmsnorm(x.get(), with_residual ? r.get() : nullptr, res_out.get(), w.get(), n, dim, 1e-6f,
                              add_one, out.get(), st).is_ok());
          EXPECT_LT(rel_err(to_host(st, out), widen(ref), true), 1e-2) << "n=" << n << " dim=" << dim;
          const auto ro = to_host(st, res_out);
          int64_t bad = 0;
          for (size_t i = 0; i < h.size(); ++i) bad += ro[i] != f32_to_bf16(h[i]);
          EXPECT_EQ(bad, 0) << "residual_out n=" << n << " dim=" << dim;
        }
}

TEST(CudaElementwise, Rope) {
  REQUIRE_GPU();
  for (int hd : {64, 128, 256}) {
    const int n_tokens = 5, n_heads = 3;
    std::vector<float> xw;
    const auto xb = to_bf16(randn(static_cast<size_t>(n_tokens) * n_heads * hd), &xw);
    std::vector<int32_t> pos = {0, 1, 17, 4097, 32000};
    std::vector<float> inv(hd / 2);
    for (int i = 0; i < hd / 2; ++i) inv[i] = static_cast<float>(1.0 / std::pow(500000.0, 2.0 * i / hd));
    std::vector<float> ref = xw;
    ops::rope(ref.data(), pos.data(), n_tokens, n_heads, hd, inv.data());
    auto x = to_device(st, xb);
    auto p = to_device(st, pos);
    auto f = to_device(st, inv);
    ASSERT_TRUE(rope(x.get(), p.get(), n_tokens, n_heads, hd, f.get(), st).is_ok());
    EXPECT_LT(rel_err(to_host(st, x), widen(ref), true), 1e-2) << "head_dim=" << hd;
  }
}

TEST(CudaElementwise, GatedActivations) {
  REQUIRE_GPU();
  for (int64_t n : {1, 17, 4097 * 3}) {
    std::vector<float> gw, uw;
    const auto gb = to_bf16(randn(n, 2.0f), &gw);
    const auto ub = to_bf16(randn(n), &uw);
    auto g = to_device(st, gb), u = to_device(st, ub);
    for (bool gelu : {false, true}) {
      std::vector<float> ref(n);
      (gelu ? ops::gelu_tanh_mul : ops::silu_mul)(gw.data(), uw.data(), n, ref.data());
      auto out = to_device(st, std::vector<uint16_t>(n, kBf16Nan));
      ASSERT_TRUE((gelu ? gelu_tanh_mul : silu_mul)(g.get(), u.get(), n, out.get(), st).is_ok());
      EXPECT_LT(rel_err(to_host(st, out), widen(ref), true), 1e-2) << (gelu ? "gelu" : "silu") << " n=" << n;
    }
  }
}

TEST(CudaElementwise, Embedding) {
  REQUIRE_GPU();
  const int64_t vocab = 1000;
  const int dim = 4097, n = 7;
  std::vector<float> tw;
  const auto tb = to_bf16(randn(vocab * dim), &tw);
  std::vector<int32_t> tokens = {0, 999, 5, 5, 123, 17, 998};
  std::vector<float> ref(static_cast<size_t>(n) * dim);
  ops::embedding(ops::WeightView{DType::kBF16, vocab, dim, tb.data()}, tokens.data(), n, 1.5f, ref.data());
  auto table = to_device(st, tb);
  auto tok = to_device(st, tokens);
  auto out = to_device(st, std::vector<uint16_t>(ref.size(), kBf16Nan));
  ASSERT_TRUE(embedding(table.get(), vocab, dim, tok.get(), n, 1.5f, out.get(), st).is_ok());
  EXPECT_LT(rel_err(to_host(st, out), widen(ref), true), 1e-2);
}

// A paged cache with shuffled block tables; decode queries (one per sequence) at the end of
// contexts of awkward lengths; kv_write fills it, then attention reads it.
TEST(CudaAttention, KvWriteAndPagedDecode) {
  REQUIRE_GPU();
  const int bs = 16, n_kv = 2, n_heads = 8;
  const std::vector<int> contexts = {1, 37, 300};
  for (int hd : {64, 128})
    for (CacheType ct : {CacheType::kF32, CacheType::kBF16})
      for (auto [window, softcap] : {std::pair<int, float>{0, 0.0f}, {50, 30.0f}}) {
        const int n_seq = static_cast<int>(contexts.size());
        const int max_blocks = (300 + bs - 1) / bs;
        const int n_blocks = n_seq * max_blocks;
        std::vector<int32_t> perm(n_blocks);
        for (int i = 0; i < n_blocks; ++i) perm[i] = i;
        std::shuffle(perm.begin(), perm.end(), rng());
        std::vector<int32_t> tables(perm);  // [n_seq, max_blocks]
        // Every position of every sequence, written through kv_write in one call.
        std::vector<int32_t> slots;
        for (int sq = 0; sq < n_seq; ++sq)
          for (int p = 0; p < contexts[sq]; ++p) slots.push_back(tables[sq * max_blocks + p / bs] * bs + p % bs);
        const int n_tok = static_cast<int>(slots.size());
        const size_t row = static_cast<size_t>(n_kv) * hd;
        std::vector<float> kw, vw;
        const auto kb = to_bf16(randn(n_tok * row), &kw);
        const auto vb = to_bf16(randn(n_tok * row), &vw);
        const size_t cache_elems = static_cast<size_t>(n_blocks) * bs * row;
        std::vector<float> kc_ref(cache_elems, 0.0f), vc_ref(cache_elems, 0.0f);
        ops::kv_write(kw.data(), vw.data(), slots.data(), n_tok, ops::KvLayout{bs, n_kv, hd}, kc_ref.data(), vc_ref.data());
        const size_t esz = ct == CacheType::kF32 ? 4 : 2;
        auto kc = DeviceBuffer<uint8_t>::create(st, cache_elems * esz);
        auto vc = DeviceBuffer<uint8_t>::create(st, cache_elems * esz);
        ASSERT_TRUE(kc.is_ok() && vc.is_ok());
        ASSERT_TRUE(st.memset(kc.value().get(), 0, cache_elems * esz).is_ok());
        ASSERT_TRUE(st.memset(vc.value().get(), 0, cache_elems * esz).is_ok());
        auto kd = to_device(st, kb), vd = to_device(st, vb);
        auto sd = to_device(st, slots);
        ASSERT_TRUE(kv_write(kd.get(), vd.get(), sd.get(), n_tok, n_kv, hd, ct, kc.value().get(), vc.value().get(), st).is_ok());
        {
          std::vector<uint8_t> back(cache_elems * esz);
          ASSERT_TRUE(st.download(back.data(), kc.value().get(), back.size()).is_ok());
          int64_t bad = 0;
          for (size_t i = 0; i < cache_elems; ++i) {
            float v;
            if (esz == 4) std::memcpy(&v, back.data() + 4 * i, 4);
            else { uint16_t b; std::memcpy(&b, back.data() + 2 * i, 2); v = bf16_to_f32(b); }
            bad += v != kc_ref[i];
          }
          EXPECT_EQ(bad, 0) << "kv_write";
        }
        // Queries: the last position of each sequence.
        std::vector<float> qw;
        const auto qb = to_bf16(randn(static_cast<size_t>(n_seq) * n_heads * hd), &qw);
        std::vector<int32_t> positions, token_seq;
        std::vector<ops::AttnSeq> seqs;
        for (int sq = 0; sq < n_seq; ++sq) {
          positions.push_back(contexts[sq] - 1);
          token_seq.push_back(sq);
          seqs.push_back({sq, 1, tables.data() + sq * max_blocks});
        }
        ops::AttnParams ap{n_heads, 1.0f / std::sqrt(static_cast<float>(hd)), softcap, window};
        std::vector<float> ref(qw.size());
        ops::paged_attention(qw.data(), positions.data(), seqs, kc_ref.data(), vc_ref.data(), ops::KvLayout{bs, n_kv, hd},
                             ap, ref.data());
        DecodeAttnParams dp;
        dp.n_heads = n_heads;
        dp.n_kv_heads = n_kv;
        dp.head_dim = hd;
        dp.block_size = bs;
        dp.max_blocks = max_blocks;
        dp.scale = ap.scale;
        dp.softcap = softcap;
        dp.window = window;
        dp.cache = ct;
        auto q = to_device(st, qb);
        auto pd = to_device(st, positions), ts = to_device(st, token_seq), bt = to_device(st, tables);
        auto out = to_device(st, std::vector<uint16_t>(qb.size(), kBf16Nan));
        ASSERT_TRUE(paged_decode_attention(q.get(), pd.get(), ts.get(), bt.get(), kc.value().get(), vc.value().get(),
                                           n_seq, dp, out.get(), st).is_ok());
        EXPECT_LT(rel_err(to_host(st, out), widen(ref), true), 1e-2)
            << "hd=" << hd << " cache=" << static_cast<int>(ct) << " window=" << window;
      }
}

}  // namespace
}  // namespace nibble::cuda

#endif  // NIBBLE_HAVE_CUDA

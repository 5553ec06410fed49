// MXFP4, NVFP4 and FP8-E4M3 against references built on ml_dtypes' conversions
// (tools/make_quant_goldens.py fp): codes, scales and dequantized values bit for bit.
#include <cmath>

#include "quant/fp8.h"
#include "quant/minifloat.h"
#include "quant/mxfp4.h"
#include "quant/nvfp4.h"
#include "quant_test_util.h"

namespace nibble::quant {
namespace {

using testing::open_golden;

std::vector<uint8_t> unpack_low_first(const std::vector<uint8_t>& packed) {
  std::vector<uint8_t> out;
  for (uint8_t b : packed) {
    out.push_back(b & 0xF);
    out.push_back(b >> 4);
  }
  return out;
}

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < a.size(); ++i) bad += std::memcmp(&a[i], &b[i], 4) != 0;
  EXPECT_EQ(bad, 0) << what;
}

std::vector<float> dequant_all(const QuantWeight& w) {
  std::vector<float> out(w.rows() * w.cols());
  for (int64_t r = 0; r < w.rows(); ++r) w.dequant_row(r, out.data() + r * w.cols());
  return out;
}

TEST(FpFormats, ScalarConversionsMatchMlDtypes) {
  auto g = open_golden("fp_formats.safetensors");
  const auto dec = g.vec<float>("e4m3.decode");
  for (int c = 0; c < 256; ++c) {
    const float v = e4m3_decode(static_cast<uint8_t>(c));
    if (std::isnan(dec[c])) EXPECT_TRUE(std::isnan(v)) << c;
    else EXPECT_EQ(v, dec[c]) << c;
  }
  const auto x = g.vec<float>("e4m3.x");
  const auto enc = g.vec<uint8_t>("e4m3.enc");
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(e4m3_encode(x[i]), enc[i]) << x[i];
  const auto x4 = g.vec<float>("e2m1.x");
  const auto enc4 = g.vec<uint8_t>("e2m1.enc");
  for (size_t i = 0; i < x4.size(); ++i) EXPECT_EQ(e2m1_encode(x4[i]), enc4[i]) << x4[i];
}

TEST(FpFormats, Mxfp4MatchesReference) {
  auto g = open_golden("fp_formats.safetensors");
  const TensorRef& wt = g.at("w");
  const auto w = g.vec<float>("w");
  Mxfp4Data d = mxfp4_quantize(w.data(), wt.shape[0], wt.shape[1]);
  EXPECT_EQ(d.scales, g.vec<uint8_t>("mx.scales"));
  EXPECT_EQ(unpack_low_first(d.packed), g.vec<uint8_t>("mx.codes"));
  Mxfp4Weight q(wt.shape[0], wt.shape[1], nullptr, nullptr, d);
  expect_same_bits(dequant_all(q), g.vec<float>("mx.deq"), "mxfp4 dequant");
}

TEST(FpFormats, Nvfp4MatchesReference) {
  auto g = open_golden("fp_formats.safetensors");
  const TensorRef& wt = g.at("w");
  const auto w = g.vec<float>("w");
  Nvfp4Data d = nvfp4_quantize(w.data(), wt.shape[0], wt.shape[1]);
  EXPECT_EQ(d.global, g.vec<float>("nv.global")[0]);
  EXPECT_EQ(d.scales, g.vec<uint8_t>("nv.scales"));
  EXPECT_EQ(unpack_low_first(d.packed), g.vec<uint8_t>("nv.codes"));
  Nvfp4Weight q(wt.shape[0], wt.shape[1], nullptr, nullptr, d.global, d);
  expect_same_bits(dequant_all(q), g.vec<float>("nv.deq"), "nvfp4 dequant");
}

TEST(FpFormats, Fp8MatchesReference) {
  auto g = open_golden("fp_formats.safetensors");
  const TensorRef& wt = g.at("w");
  const auto w = g.vec<float>("w");
  Fp8Data d = fp8_quantize(w.data(), wt.shape[0], wt.shape[1]);
  expect_same_bits(d.scales, g.vec<float>("fp8.scales"), "fp8 scales");
  EXPECT_EQ(d.codes, g.vec<uint8_t>("fp8.codes"));
  Fp8Weight q(wt.shape[0], wt.shape[1], nullptr, nullptr, d);
  expect_same_bits(dequant_all(q), g.vec<float>("fp8.deq"), "fp8 dequant");
}

}  // namespace
}  // namespace nibble::quant

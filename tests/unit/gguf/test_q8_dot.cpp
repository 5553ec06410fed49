// The llama.cpp numerics mode's building blocks (src/ops/cpu/q8_dot.h, llamacpp.h) against
// values computed independently in Python (tests/data/gguf/q8_dot.json, made by
// tools/make_q8_goldens.py from ggml's AVX2 rules; weight blocks by gguf-py's quantizer).
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "gguf_test_util.h"
#include "ops/cpu/llamacpp.h"
#include "ops/cpu/q8_dot.h"
#include "quant/ggml_types.h"

namespace nibble {
namespace {

using test::gguf_data;

nlohmann::json goldens() {
  std::ifstream f(gguf_data("q8_dot.json"));
  EXPECT_TRUE(f.good()) << gguf_data("q8_dot.json");
  return nlohmann::json::parse(f);
}

std::vector<uint8_t> from_hex(const std::string& h) {
  std::vector<uint8_t> b(h.size() / 2);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(std::stoi(h.substr(2 * i, 2), nullptr, 16));
  return b;
}

std::vector<float> from_bits(const nlohmann::json& a) {
  std::vector<float> x;
  for (uint32_t u : a.get<std::vector<uint32_t>>()) {
    float f;
    std::memcpy(&f, &u, 4);
    x.push_back(f);
  }
  return x;
}

TEST(Q8Quantize, MatchesGoldenBlocksByteForByte) {
  const auto g = goldens();
  int checked = 0;
  for (const auto& row : g["quantize"]) {
    const std::vector<float> x = from_bits(row["x"]);
    const std::vector<uint8_t> want = from_hex(row["blocks"]);
    std::vector<uint8_t> got(want.size() + 64, 0xAB);  // poisoned
    if (row["type"] == "Q8_0")
      ops::q8::quantize_row_q8_0(x.data(), reinterpret_cast<ops::q8::BlockQ8_0*>(got.data()), x.size());
    else
      ops::q8::quantize_row_q8_1(x.data(), reinterpret_cast<ops::q8::BlockQ8_1*>(got.data()), x.size());
    got.resize(want.size());
    EXPECT_EQ(got, want) << row["type"] << " row " << checked;
    ++checked;
  }
  EXPECT_EQ(checked, 14);
}

TEST(Q8Quantize, TiesRoundToEvenAndZeroBlocksStayZero) {
  float x[32] = {127.0f, 2.5f, -2.5f, 3.5f, 0.5f, -0.5f};
  ops::q8::BlockQ8_1 b;
  ops::q8::quantize_row_q8_1(x, &b, 32);
  EXPECT_EQ(f16_to_f32(b.d), f16_to_f32(f32_to_f16(1.0f)));
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 2);   // half to even (ggml's reference scalar code would give 3)
  EXPECT_EQ(b.qs[2], -2);
  EXPECT_EQ(b.qs[3], 4);
  EXPECT_EQ(b.qs[4], 0);
  EXPECT_EQ(b.qs[5], 0);
  EXPECT_EQ(f16_to_f32(b.s), 127.0f + 2 - 2 + 4);
  float zeros[32] = {};
  ops::q8::quantize_row_q8_1(zeros, &b, 32);
  EXPECT_EQ(b.d, 0);
  EXPECT_EQ(b.s, 0);
  for (int8_t q : b.qs) EXPECT_EQ(q, 0);
}

TEST(Q8Dot, MatchesGoldenBitForBit) {
  const auto g = goldens();
  int checked = 0;
  for (const auto& d : g["dot"]) {
    const GgmlType t = *ggml_type_from_name(d["type"].get<std::string>());
    const int64_t n = d["n"];
    const std::vector<uint8_t> w = from_hex(d["w"]), a = from_hex(d["a"]);
    ASSERT_TRUE(ops::q8::vec_dot_type(t).has_value()) << d["type"];
    const float got = ops::q8::vec_dot(t, n, w.data(), a.data());
    EXPECT_EQ(test::float_bits(got), d["expected"].get<uint32_t>()) << d["type"] << " n=" << n << " got " << got;
    // Sanity, independent of the accumulation order: close to the float dot of the dequantized
    // weights and activations.
    std::vector<float> wf(n);
    ASSERT_TRUE(ggml_dequantize_row(t, w.data(), wf.data(), n).is_ok());
    const bool q8_1 = *ops::q8::vec_dot_type(t) == GgmlType::Q8_1;
    double ref = 0, mag = 0;
    for (int64_t b = 0; b < n / 32; ++b) {
      const uint8_t* blk = a.data() + b * (q8_1 ? 36 : 34);
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const auto* qs = reinterpret_cast<const int8_t*>(blk + (q8_1 ? 4 : 2));
      for (int j = 0; j < 32; ++j) {
        const double p = static_cast<double>(wf[b * 32 + j]) * f16_to_f32(dh) * qs[j];
        ref += p;
        mag += std::fabs(p);
      }
    }
    // The _1 types use s = f16(d * sum q) for the offset term: a few f16 ulps of it.
    EXPECT_NEAR(got, ref, 2e-3 * mag + 1e-6) << d["type"] << " n=" << n;
    ++checked;
  }
  EXPECT_EQ(checked, 16);
}

TEST(Q8Dot, TypesLlamaCppRepacksAreNotClaimed) {
  EXPECT_EQ(ops::q8::vec_dot_type(GgmlType::Q4_1), GgmlType::Q8_1);
  EXPECT_EQ(ops::q8::vec_dot_type(GgmlType::Q8_0), GgmlType::Q8_0);
  EXPECT_FALSE(ops::q8::vec_dot_type(GgmlType::Q4_0).has_value());  // repacked to 8x8 on AVX2
  EXPECT_FALSE(ops::q8::vec_dot_type(GgmlType::Q4_K).has_value());
  EXPECT_FALSE(ops::q8::vec_dot_type(GgmlType::F16).has_value());
}

TEST(LlamaCppOps, ExpPolyIsWithinTwoUlpOfExp) {
  // ggml_v_expf's stated error is 1.45 ulp + 0.5; it must also saturate like the vector code.
  for (float x = -87.0f; x < 88.0f; x += 0.0137f) {
    const float got = ops::llamacpp::expf_poly(x);
    const float want = std::exp(x);
    EXPECT_LE(std::fabs(got - want), 2.5f * (std::nextafter(want, INFINITY) - want)) << x;
  }
  EXPECT_EQ(ops::llamacpp::expf_poly(-200.0f), 0.0f);
  EXPECT_EQ(ops::llamacpp::expf_poly(200.0f), INFINITY);
  EXPECT_EQ(ops::llamacpp::expf_poly(0.0f), 1.0f);
}

}  // namespace
}  // namespace nibble

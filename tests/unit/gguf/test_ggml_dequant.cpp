// ggml dequantizers vs gguf-py's reference, bit for bit (tests/data/gguf/dequant_*.bin, made by
// tools/make_gguf_goldens.py), and the type table vs gguf-py's GGML_QUANT_SIZES.
#include <nlohmann/json.hpp>

#include "gguf_test_util.h"
#include "quant/ggml_types.h"

namespace nibble {
namespace {

using test::gguf_data;
using test::read_bytes;
using test::same_bits;

struct Golden {
  GgmlType type;
  uint32_t n_blocks = 0;
  std::vector<uint8_t> raw;      // [n_blocks * type_size]
  std::vector<uint32_t> want;    // [n_blocks * block_size] float bits
};

Golden load_golden(const std::string& type_name) {
  std::string file = "dequant_";
  for (char c : type_name) file += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::vector<uint8_t> b = read_bytes(gguf_data(file + ".bin"));
  Golden g;
  if (b.size() < 16 || std::memcmp(b.data(), "NBDQ", 4) != 0) {
    ADD_FAILURE() << file << ": bad golden file";
    return g;
  }
  const uint32_t id = test::get<uint32_t>(b, 4);
  g.n_blocks = test::get<uint32_t>(b, 8);
  const uint32_t n = test::get<uint32_t>(b, 12);
  const GgmlTypeInfo* info = ggml_type_info(id);
  EXPECT_NE(info, nullptr) << file;
  if (!info) return g;
  g.type = info->type;
  EXPECT_EQ(info->name, type_name);
  EXPECT_EQ(n, g.n_blocks * info->block_size) << file;
  const size_t raw_bytes = size_t{g.n_blocks} * info->type_size;
  EXPECT_EQ(b.size(), 16 + raw_bytes + 4 * size_t{n}) << file << ": block size in the table disagrees";
  if (b.size() != 16 + raw_bytes + 4 * size_t{n}) return g;
  g.raw.assign(b.begin() + 16, b.begin() + 16 + raw_bytes);
  g.want.resize(n);
  std::memcpy(g.want.data(), b.data() + 16 + raw_bytes, 4 * size_t{n});
  return g;
}

class DequantGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(DequantGolden, RowMatchesGgufPyBitForBit) {
  const Golden g = load_golden(GetParam());
  ASSERT_FALSE(g.want.empty());
  // At an odd address: blocks in a GGUF file are only as aligned as their size allows.
  std::vector<uint8_t> shifted(g.raw.size() + 1);
  std::memcpy(shifted.data() + 1, g.raw.data(), g.raw.size());
  std::vector<float> out(g.want.size(), -12345.0f);  // poisoned
  ASSERT_TRUE(ggml_dequantize_row(g.type, shifted.data() + 1, out.data(), static_cast<int64_t>(out.size())));
  int failures = 0;
  for (size_t i = 0; i < out.size() && failures < 5; ++i) {
    auto r = same_bits(out[i], g.want[i], i);
    if (!r) ++failures;
    EXPECT_TRUE(r) << GetParam();
  }
}

TEST_P(DequantGolden, WholeTensorMatchesRows) {
  const Golden g = load_golden(GetParam());
  ASSERT_FALSE(g.want.empty());
  const GgmlTypeInfo& info = ggml_type_info(g.type);
  // The same blocks seen as a [rows, cols] tensor with several blocks per row where possible.
  int64_t blocks_per_row = g.n_blocks % 4 == 0 ? 4 : 1;
  if (info.block_size == 1) blocks_per_row = 64;
  const int64_t rows = g.n_blocks / blocks_per_row, cols = blocks_per_row * info.block_size;
  std::vector<float> out(static_cast<size_t>(rows * cols), -12345.0f);
  ASSERT_TRUE(ggml_dequantize(g.type, g.raw.data(), g.raw.size(), rows, cols, out.data()));
  for (size_t i = 0; i < out.size(); ++i) ASSERT_TRUE(same_bits(out[i], g.want[i], i)) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DequantGolden,
                         ::testing::Values("F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64", "Q4_0",
                                           "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                                           "Q6_K", "IQ4_NL", "IQ4_XS", "MXFP4"),
                         [](const auto& info) { return std::string(info.param); });

TEST(GgmlTypes, TableMatchesGgufPy) {
  const auto j = nlohmann::json::parse(read_bytes(gguf_data("ggml_types.json")));
  size_t seen = 0;
  for (auto& [name, v] : j.items()) {
    // gguf-py still lists Q8_1 with two f32 scales (40 bytes); ggml's block_q8_1 has two f16
    // (36 bytes) and is an activation format that never appears in model files.
    if (name == "Q8_1") continue;
    const GgmlTypeInfo* info = ggml_type_info(v[0].get<uint32_t>());
    ASSERT_NE(info, nullptr) << name << " is missing from kGgmlTypes";
    EXPECT_EQ(info->name, name);
    EXPECT_EQ(info->block_size, v[1].get<uint32_t>()) << name;
    EXPECT_EQ(info->type_size, v[2].get<uint32_t>()) << name;
    EXPECT_EQ(ggml_type_from_name(name), info->type);
    ++seen;
  }
  EXPECT_EQ(seen + 1, kGgmlTypes.size()) << "kGgmlTypes has types gguf-py does not know";
  EXPECT_EQ(ggml_type_info(4u), nullptr);    // Q4_2, removed
  EXPECT_EQ(ggml_type_info(31u), nullptr);   // Q4_0_4_4, removed
  EXPECT_EQ(ggml_type_info(1000u), nullptr);
}

TEST(GgmlTypes, RowBytes) {
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_K, 4096), 16u * 144u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::F16, 17), 34u);
  EXPECT_FALSE(ggml_row_bytes(GgmlType::Q4_0, 33).has_value());
  EXPECT_FALSE(ggml_row_bytes(GgmlType::F64, uint64_t{1} << 62).has_value());  // overflow
}

TEST(GgmlDequant, RefusesWhatItCannotDo) {
  std::vector<uint8_t> raw(2 * 66);
  std::vector<float> out(512);
  Status s = ggml_dequantize_row(GgmlType::IQ2_XXS, raw.data(), out.data(), 256);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("IQ2_XXS"), std::string::npos) << s.message();

  s = ggml_dequantize_row(GgmlType::Q4_0, raw.data(), out.data(), 33);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);

  // Wrong byte count for the shape.
  s = ggml_dequantize(GgmlType::Q4_0, raw.data(), 17, 1, 32, out.data());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("18"), std::string::npos) << s.message();

  s = ggml_dequantize(static_cast<GgmlType>(77), raw.data(), raw.size(), 1, 32, out.data());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

// Hand-checked values, independent of the goldens: one block each, known answers.
TEST(GgmlDequant, KnownValues) {
  // Q4_0 with d = 1.0 (f16 0x3c00): nibble q -> q - 8.
  uint8_t q4[18] = {0x00, 0x3c};
  q4[2] = 0xF0;  // element 0: 0 - 8 = -8; element 16: 15 - 8 = 7
  float out[32];
  dequant_q4_0(q4, out, 1);
  EXPECT_EQ(out[0], -8.0f);
  EXPECT_EQ(out[16], 7.0f);

  // MXFP4: e = 128 -> half scale 2^0 = 1, so values are the doubled E2M1 table: code 7 -> 12
  // (6.0 in E2M1 times 2^1 from e=128), code 0xF -> -12. e = 127 halves them.
  uint8_t mx[17] = {128, 0xF7};
  dequant_mxfp4(mx, out, 1);
  EXPECT_EQ(out[0], 12.0f);
  EXPECT_EQ(out[16], -12.0f);
  mx[0] = 127;
  dequant_mxfp4(mx, out, 1);
  EXPECT_EQ(out[0], 6.0f);
  mx[0] = 0;  // 2^-128 (subnormal) * 12
  dequant_mxfp4(mx, out, 1);
  EXPECT_EQ(out[0], std::ldexp(12.0f, -128));
}

}  // namespace
}  // namespace nibble

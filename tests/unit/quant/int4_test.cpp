// GPTQ, AWQ and compressed-tensors INT4 imports against packs made by auto-gptq's
// QuantLinear.pack, AutoAWQ's WQLinear_GEMM.from_linear and compressed-tensors' pack_to_int32
// (tools/make_quant_goldens.py int4): every code, zero point and scale must come back exactly.
#include <cmath>

#include "core/dtype.h"
#include "quant/int4.h"
#include "quant/quant_loader.h"
#include "quant_test_util.h"

namespace nibble::quant {
namespace {

using testing::open_golden;

struct Case {
  std::string name;
  int gs;
  bool act, sym;
};
const std::vector<Case> kCases = {{"g128", 128, false, false}, {"g32_asym", 32, false, false},
                                  {"g64_act", 64, true, false}, {"ch_sym", 256, false, true}};
constexpr int64_t kN = 64, kK = 256;

OutTensor raw(const testing::Golden& g, const std::string& key, const std::string& name, const std::string& dt) {
  const TensorRef& t = g.at(key);
  OutTensor o{name, dt, t.shape, {}};
  o.data.assign(static_cast<const uint8_t*>(t.data), static_cast<const uint8_t*>(t.data) + t.nbytes);
  return o;
}

std::unique_ptr<QuantWeight> load(const std::string& dir, const std::string& qc) {
  auto src = SafetensorsSource::open_dir(dir);
  EXPECT_TRUE(src.is_ok()) << src.status().message();
  auto loader = make_quant_loader(qc, "config.json");
  EXPECT_TRUE(loader.is_ok()) << loader.status().message();
  auto w = (*loader)->load(**src, "m.weight", kN, kK);
  EXPECT_TRUE(w.is_ok()) << w.status().message();
  return w.is_ok() ? std::move(*w) : nullptr;
}

void expect_codes(const testing::Golden& g, const Case& c, const QuantWeight& w, bool check_zero) {
  const auto* iw = dynamic_cast<const Int4Weight*>(&w);
  ASSERT_NE(iw, nullptr);
  const auto q = g.vec<uint8_t>(c.name + ".q");
  const auto z = g.vec<uint8_t>(c.name + ".z");
  const auto gi = g.vec<int32_t>(c.name + ".g_idx");
  const int64_t G = kK / c.gs;
  int bad = 0;
  for (int64_t r = 0; r < kN; ++r)
    for (int64_t k = 0; k < kK; ++k) {
      bad += iw->code(r, k) != q[r * kK + k];
      if (check_zero) bad += iw->data().zeros[r * G + gi[k]] != z[r * G + gi[k]];
    }
  EXPECT_EQ(bad, 0) << c.name;
  EXPECT_EQ(iw->data().g_idx.empty(), !c.act) << c.name;
}

TEST(Int4, GptqV1MatchesAutoGptqPacking) {
  auto g = open_golden("int4_packs.safetensors");
  for (const auto& c : kCases) {
    const std::string p = c.name + ".gptq.";
    const std::string dir = testing::write_checkpoint(
        "gptq_" + c.name, fmt::format(R"({{"quant_method": "gptq", "bits": 4, "group_size": {}, "desc_act": {},
            "sym": {}, "checkpoint_format": "gptq"}})", c.gs == kK ? -1 : c.gs, c.act, c.sym),
        {raw(g, p + "qweight", "m.qweight", "I32"), raw(g, p + "qzeros", "m.qzeros", "I32"),
         raw(g, p + "scales", "m.scales", "F16"), raw(g, p + "g_idx", "m.g_idx", "I32")});
    auto w = load(dir, fmt::format(R"({{"quant_method": "gptq", "bits": 4, "group_size": {}, "desc_act": {}}})",
                                   c.gs == kK ? -1 : c.gs, c.act));
    ASSERT_TRUE(w);
    expect_codes(g, c, *w, true);
    // (code - zero) * scale with the fp16 scales: exact, equal to the fp32 matrix packed.
    const auto ref = g.vec<float>(c.name + ".w");
    std::vector<float> row(kK);
    for (int64_t r = 0; r < kN; ++r) {
      w->dequant_row(r, row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), ref.data() + r * kK, kK * 4)) << c.name << " row " << r;
    }
  }
}

TEST(Int4, AwqMatchesAutoAwqPacking) {
  auto g = open_golden("int4_packs.safetensors");
  for (const auto& c : kCases) {
    if (c.act) continue;  // AWQ has no act-order
    const std::string p = c.name + ".awq.";
    const std::string qc = fmt::format(R"({{"quant_method": "awq", "bits": 4, "group_size": {}, "zero_point": true,
        "version": "gemm"}})", c.gs);
    const std::string dir = testing::write_checkpoint("awq_" + c.name, qc,
        {raw(g, p + "qweight", "m.qweight", "I32"), raw(g, p + "qzeros", "m.qzeros", "I32"),
         raw(g, p + "scales", "m.scales", "F16")});
    auto w = load(dir, qc);
    ASSERT_TRUE(w);
    expect_codes(g, c, *w, true);
    // AutoAWQ's own dequantize_gemm computes in fp16: ours, rounded to fp16, is the same.
    const auto ref = g.vec<float>(p + "ref");
    std::vector<float> row(kK);
    int bad = 0;
    for (int64_t r = 0; r < kN; ++r) {
      w->dequant_row(r, row.data());
      for (int64_t k = 0; k < kK; ++k) bad += f16_to_f32(f32_to_f16(row[k])) != ref[r * kK + k];
    }
    EXPECT_EQ(bad, 0) << c.name;
  }
}

TEST(Int4, CompressedTensorsMatchesItsPacking) {
  auto g = open_golden("int4_packs.safetensors");
  for (const auto& c : kCases) {
    if (c.act) continue;
    const std::string p = c.name + ".ct.";
    const std::string strategy = c.gs == kK ? "channel" : "group";
    const std::string qc = fmt::format(R"({{"quant_method": "compressed-tensors", "format": "pack-quantized",
        "config_groups": {{"group_0": {{"targets": ["Linear"], "weights": {{"num_bits": 4, "type": "int",
        "symmetric": {}, "strategy": "{}", "group_size": {}}}}}}}}})", c.sym, strategy, c.gs);
    const int64_t shape[2] = {kN, kK};
    std::vector<OutTensor> ts = {raw(g, p + "weight_packed", "m.weight_packed", "I32"),
                                 raw(g, p + "weight_scale", "m.weight_scale", "BF16"),
                                 make_out("m.weight_shape", "I64", {2}, shape, 2)};
    if (!c.sym) ts.push_back(raw(g, p + "weight_zero_point", "m.weight_zero_point", "I32"));
    const std::string dir = testing::write_checkpoint("ct_" + c.name, qc, ts);
    auto w = load(dir, qc);
    ASSERT_TRUE(w);
    expect_codes(g, c, *w, !c.sym);
    // compressed-tensors' dequantize computes in the scale dtype (bf16).
    const auto ref = g.vec<float>(p + "ref");
    std::vector<float> row(kK);
    int bad = 0;
    for (int64_t r = 0; r < kN; ++r) {
      w->dequant_row(r, row.data());
      for (int64_t k = 0; k < kK; ++k) bad += bf16_to_f32(f32_to_bf16(row[k])) != ref[r * kK + k];
    }
    EXPECT_EQ(bad, 0) << c.name;
  }
}

TEST(Int4, UnsupportedGroupSizeOrBitsNameTheTensor) {
  auto g = open_golden("int4_packs.safetensors");
  const std::string dir = testing::write_checkpoint("gptq_bad", "{}",
      {raw(g, "g128.gptq.qweight", "m.qweight", "I32"), raw(g, "g128.gptq.qzeros", "m.qzeros", "I32"),
       raw(g, "g128.gptq.scales", "m.scales", "F16")});
  auto src = SafetensorsSource::open_dir(dir);
  ASSERT_TRUE(src.is_ok());
  auto loader = make_quant_loader(R"({"quant_method": "gptq", "bits": 4, "group_size": 100})", "config.json");
  ASSERT_TRUE(loader.is_ok());
  auto w = (*loader)->load(**src, "m.weight", kN, kK);
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("m.qweight"), std::string::npos) << w.status().message();
  EXPECT_NE(w.status().message().find("group size 100"), std::string::npos) << w.status().message();
  // A group size that does not match the scales' shape.
  loader = make_quant_loader(R"({"quant_method": "gptq", "bits": 4, "group_size": 64})", "config.json");
  w = (*loader)->load(**src, "m.weight", kN, kK);
  ASSERT_FALSE(w.is_ok());
  EXPECT_NE(w.status().message().find("m.qzeros"), std::string::npos) << w.status().message();
  auto bits = make_quant_loader(R"({"quant_method": "gptq", "bits": 3, "group_size": 128})", "config.json");
  ASSERT_FALSE(bits.is_ok());
  EXPECT_NE(bits.status().message().find("bits 3"), std::string::npos);
}

}  // namespace
}  // namespace nibble::quant

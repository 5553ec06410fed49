// bitsandbytes compatibility against bitsandbytes itself (tools/make_quant_goldens.py bnb, run
// with bitsandbytes 0.50.2 on CUDA): its quantizer's bytes, its checkpoints, its dequantization.
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "io/model_config.h"
#include "model/model.h"
#include "quant/quant_loader.h"
#include "quant/bnb_import.h"
#include "quant/nf4.h"
#include "quant/quantize_model.h"
#include "quant_test_util.h"
#include "runtime/single_sequence.h"

namespace nibble::quant {
namespace {

using testing::open_golden;

TEST(Bnb4, QuantizeMatchesBitsandbytesEveryBlockSize) {
  auto g = open_golden("bnb_kernels.safetensors");
  const auto x = g.vec<float>("x");
  for (auto type : {Bnb4Type::kNf4, Bnb4Type::kFp4}) {
    for (int bs : {32, 64, 128, 256, 512, 1024, 2048, 4096}) {
      const std::string p = std::string(bnb4_name(type)) + "_b" + std::to_string(bs);
      Bnb4Quantized q = bnb4_quantize(x.data(), static_cast<int64_t>(x.size()), bs, type);
      EXPECT_EQ(q.packed, g.vec<uint8_t>(p + ".packed")) << p;
      EXPECT_EQ(q.absmax, g.vec<float>(p + ".absmax")) << p;
    }
    {
      const std::string p = std::string(bnb4_name(type)) + "_zero";
      const auto v = g.vec<float>(p + ".x");
      Bnb4Quantized q = bnb4_quantize(v.data(), static_cast<int64_t>(v.size()), 64, type);
      EXPECT_EQ(q.packed, g.vec<uint8_t>(p + ".packed")) << p;
    }
    // Inputs placed exactly on (or one ulp from) the decision thresholds: bitsandbytes 0.50.2's
    // CUDA kernel breaks a few of these differently from its source's thresholds (not yet
    // understood, see docs/quantization.md); only such inputs may differ, and only by one code.
    {
      const std::string p = std::string(bnb4_name(type)) + "_ties";
      const auto v = g.vec<float>(p + ".x");
      Bnb4Quantized q = bnb4_quantize(v.data(), static_cast<int64_t>(v.size()), 64, type);
      const auto ref = g.vec<uint8_t>(p + ".packed");
      int differ = 0;
      for (size_t i = 0; i < v.size(); ++i) {
        const int a = (i & 1) ? (q.packed[i / 2] & 0xF) : (q.packed[i / 2] >> 4);
        const int b = (i & 1) ? (ref[i / 2] & 0xF) : (ref[i / 2] >> 4);
        if (a != b) {
          ++differ;
          EXPECT_EQ(std::abs(a - b) & 0x7, 1) << p << " element " << i;
        }
      }
      RecordProperty(p + "_differ", differ);
      EXPECT_LE(differ, 6) << p;
    }
  }
}

TEST(Bnb4, DynamicMapAndBlockwise8MatchBitsandbytes) {
  auto g = open_golden("bnb_kernels.safetensors");
  const auto map = g.vec<float>("dynamic_map");
  ASSERT_EQ(map.size(), 256u);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(map[i], dynamic_map_signed()[i]) << i;
  for (const char* p : {"dyn", "dyn_ties"}) {
    const auto x = g.vec<float>(std::string(p) + ".x");
    Blockwise8 b = quantize_blockwise8(x.data(), static_cast<int64_t>(x.size()), 256, map.data());
    EXPECT_EQ(b.q, g.vec<uint8_t>(std::string(p) + ".q")) << p;
  }
}

// Double quantization of a bf16 matrix's absmax values: the 8-bit codes and the offset (torch.mean
// on the GPU, whose reduction order bnb_mean reproduces) are bitsandbytes' own.
TEST(Bnb4, DoubleQuantMatchesBitsandbytes) {
  auto g = open_golden("bnb_kernels.safetensors");
  for (auto type : {Bnb4Type::kNf4, Bnb4Type::kFp4}) {
    const std::string p = std::string(bnb4_name(type)) + "_bf16";
    const auto x = g.vec<float>(p + ".x");
    Bnb4Quantized q = bnb4_quantize(x.data(), static_cast<int64_t>(x.size()), 64, type);
    const auto ref_packed = g.vec<uint8_t>(p + ".packed");
    int differ_codes = 0;
    for (size_t i = 0; i < ref_packed.size(); ++i) differ_codes += q.packed[i] != ref_packed[i];
    RecordProperty(p + "_bytes_differ", differ_codes);
    EXPECT_LE(differ_codes, static_cast<int>(ref_packed.size()) / 200) << p;
    DoubleQuant dq = double_quantize(q.absmax);
    EXPECT_EQ(dq.offset, g.vec<float>(p + ".offset")[0]) << p;
    const auto ref_q = g.vec<uint8_t>(p + ".absmax_q");
    ASSERT_EQ(dq.q.size(), ref_q.size());
    int differ = 0;
    for (size_t i = 0; i < ref_q.size(); ++i) differ += std::abs(dq.q[i] - ref_q[i]) > 0;
    EXPECT_EQ(differ, 0) << p;
  }
}

TEST(Bnb4, PythonFloatRepr) {
  EXPECT_EQ(python_float_repr(0.20686523616313934), "0.20686523616313934");
  EXPECT_EQ(python_float_repr(1e-05), "1e-05");
  EXPECT_EQ(python_float_repr(1.5e-07), "1.5e-07");
  EXPECT_EQ(python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(python_float_repr(2.0), "2.0");
  EXPECT_EQ(python_float_repr(-123.25), "-123.25");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
}

double max_rel(const std::vector<float>& a, const float* b, size_t n) {
  double d = 0, m = 0;
  for (size_t i = 0; i < n; ++i) {
    d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
    m = std::max(m, std::fabs(static_cast<double>(b[i])));
  }
  return d / m;
}

class BnbCheckpoint : public ::testing::TestWithParam<std::string> {};

// A transformers+bitsandbytes checkpoint loads and gives the logits of fp32 math on
// bitsandbytes' own dequantized weights.
TEST_P(BnbCheckpoint, LogitsMatchBitsandbytesDequantized) {
  const std::string dir = testing::data_dir() + "/" + GetParam();
  auto model = Model::load(dir);
  ASSERT_TRUE(model.is_ok()) << model.status().message();
  auto g = open_golden(GetParam() + "/golden.safetensors");
  const int vocab = (*model)->config().vocab_size;
  for (int i = 0; i < 3; ++i) {
    const auto toks = g.vec<int32_t>("tokens_" + std::to_string(i));
    const auto ref = g.vec<float>("logits_" + std::to_string(i));
    auto logits = sequence_logits(**model, toks);
    ASSERT_TRUE(logits.is_ok()) << logits.status().message();
    for (size_t r = 0; r < toks.size(); ++r) {
      std::vector<float> row(logits->begin() + r * vocab, logits->begin() + (r + 1) * vocab);
      EXPECT_LE(max_rel(row, ref.data() + r * vocab, vocab), 2e-4) << GetParam() << " seq " << i << " pos " << r;
    }
  }
}

// Row-wise dequantization equals bitsandbytes' dequantize_4bit (fp32) bit for bit.
TEST_P(BnbCheckpoint, DequantMatchesBitsandbytesExactly) {
  const std::string dir = testing::data_dir() + "/" + GetParam();
  auto src = SafetensorsSource::open_dir(dir);
  ASSERT_TRUE(src.is_ok());
  auto cfg = load_model_config(dir);
  ASSERT_TRUE(cfg.is_ok());
  auto loader = make_quant_loader(cfg->quantization_config, "config.json");
  ASSERT_TRUE(loader.is_ok()) << loader.status().message();
  auto g = open_golden(GetParam() + "/golden.safetensors");
  for (const char* name : {"model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"}) {
    const TensorRef& ref = g.at(std::string("deq.") + name);
    auto w = (*loader)->load(**src, name, ref.shape[0], ref.shape[1]);
    ASSERT_TRUE(w.is_ok()) << w.status().message();
    ASSERT_TRUE(*w);
    // A double-quantized file's 1-byte absmax codes and nested absmax are kept as stored (the
    // GPU reads them), and the de-nested absmax the CPU uses are theirs.
    const auto* bw = dynamic_cast<const Bnb4Weight*>(w->get());
    ASSERT_NE(bw, nullptr);
    const std::string base(name);
    ASSERT_EQ(bw->nested() != nullptr, (*src)->has(base + ".nested_absmax")) << name;
    if (bw->nested()) {
      const Bnb4Nested& nd = *bw->nested();
      auto aq = (*src)->get(base + ".absmax");
      auto na = (*src)->get(base + ".nested_absmax");
      ASSERT_TRUE(aq.is_ok() && na.is_ok());
      ASSERT_EQ(nd.q.size(), aq->nbytes);
      EXPECT_EQ(std::memcmp(nd.q.data(), aq->data, aq->nbytes), 0) << name;
      ASSERT_EQ(nd.nested_absmax.size() * 4, na->nbytes);
      EXPECT_EQ(std::memcmp(nd.nested_absmax.data(), na->data, na->nbytes), 0) << name;
      EXPECT_EQ(nd.nested_blocksize, 256);
      const auto absmax = double_dequantize(nd.q.data(), static_cast<int64_t>(nd.q.size()), nd.nested_absmax.data(),
                                            nd.nested_blocksize, nd.map.data(), nd.offset);
      EXPECT_EQ(absmax, bw->absmax()) << name;
    }
    std::vector<float> row(ref.shape[1]);
    const float* rp = static_cast<const float*>(ref.data);
    for (int64_t r = 0; r < ref.shape[0]; ++r) {
      (*w)->dequant_row(r, row.data());
      for (int64_t c = 0; c < ref.shape[1]; ++c)
        ASSERT_EQ(row[c], rp[r * ref.shape[1] + c]) << name << " row " << r << " col " << c;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Bnb, BnbCheckpoint, ::testing::Values("bnb_nf4_dq", "bnb_fp4"));

// `nibble quantize --format nf4` writes what transformers + bitsandbytes save: the same tensor
// names, dtypes, shapes and bytes, the quant_state JSON (with its nested_offset) included.
TEST(Bnb4, NibbleQuantizeEqualsBitsandbytesCheckpoint) {
  namespace fs = std::filesystem;
  const std::string out = (fs::temp_directory_path() / ("nibble_q_nf4_" + std::to_string(::getpid()))).string();
  QuantizeOptions opt;
  opt.format = "nf4";
  auto rep = quantize_model(std::string(NIBBLE_TEST_DATA) + "/models/llama3_classic", out, opt);
  ASSERT_TRUE(rep.is_ok()) << rep.status().message();
  auto ours = SafetensorsFile::open(out + "/model.safetensors");
  auto ref = SafetensorsFile::open(testing::data_dir() + "/bnb_nf4_dq/model.safetensors");
  ASSERT_TRUE(ours.is_ok() && ref.is_ok());
  ASSERT_EQ(ours->tensors().size(), ref->tensors().size());
  int exact = 0;
  for (const auto& [name, r] : ref->tensors()) {
    auto it = ours->tensors().find(name);
    ASSERT_NE(it, ours->tensors().end()) << name;
    const TensorRef& o = it->second;
    EXPECT_EQ(o.dtype, r.dtype) << name;
    EXPECT_EQ(o.shape, r.shape) << name;
    const bool same = o.nbytes == r.nbytes && std::memcmp(o.data, r.data, r.nbytes) == 0;
    EXPECT_TRUE(same) << name << " differs from bitsandbytes' bytes";
    exact += same;
  }
  RecordProperty("exact_tensors", exact);
  fs::remove_all(out);
}

}  // namespace
}  // namespace nibble::quant

namespace nibble::quant {
namespace {
// bnb_mean against torch.mean of float32 vectors on an H200 (torch 2.11;
// dev/kernels/torch_mean_order.py made tests/data/quant/torch_mean.safetensors).
TEST(Bnb4, MeanEqualsTorchOnTheGpu) {
  auto g = testing::open_golden("torch_mean.safetensors");
  for (int n : {48, 144, 300, 1000, 4096, 10000, 65536, 150000}) {  // 150000: several blocks
    const auto x = g.vec<float>("x_" + std::to_string(n));
    ASSERT_EQ(x.size(), static_cast<size_t>(n));
    EXPECT_EQ(bnb_mean(x.data(), n), g.vec<float>("mean_" + std::to_string(n))[0]) << n << " values";
  }
}
}  // namespace
}  // namespace nibble::quant

// The tiny golden models as GGUF (tests/data/gguf_models, written by gguf-py through
// tools/make_gguf_models.py) against their safetensors originals, at every position of the
// golden token sequences:
// - dense GGUF (F32 / F16 / BF16): the same logits as the safetensors model. Each model has one
//   dense type written by gguf-py; the other two are derived from it in memory (the weights are
//   bf16, so F32 and BF16 are exact and F16 exact except for tiny subnormal weights).
// - quantized GGUF (Q4_0 ... MXFP4): the same logits as its F32 twin, the file with every tensor
//   dequantized. The twin is built in memory with nibble's dequantizer and checked bit for bit
//   against gguf.quants.dequantize through manifest.json's hashes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "gguf_test_util.h"
#include "io/safetensors.h"
#include "runtime/single_sequence.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;
using test::GgufBuilder;
using test::MemModel;

std::string gguf_dir() { return std::string(NIBBLE_TEST_DATA) + "/gguf_models"; }

const nlohmann::json& manifest() {
  static const nlohmann::json j = [] {
    std::ifstream f(gguf_dir() + "/manifest.json");
    std::stringstream ss;
    ss << f.rdbuf();
    return nlohmann::json::parse(ss.str(), nullptr, false);
  }();
  return j;
}

std::vector<std::vector<int32_t>> golden_tokens(const std::string& model) {
  auto f = SafetensorsFile::open(std::string(NIBBLE_TEST_DATA) + "/models/" + model + "/golden.safetensors");
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  std::vector<std::vector<int32_t>> out;
  if (!f) return out;
  for (int i = 0;; ++i) {
    auto t = f->tensors().find("tokens_" + std::to_string(i));
    if (t == f->tensors().end()) break;
    const auto* p = static_cast<const int32_t*>(t->second.data);
    out.emplace_back(p, p + t->second.numel());
  }
  return out;
}

// Per position: max|a - b| / max|b| <= tol and the same argmax. Returns the worst ratio.
double compare_logits(const std::vector<float>& a, const std::vector<float>& b, int vocab, double tol,
                      const std::string& what) {
  EXPECT_EQ(a.size(), b.size()) << what;
  double worst = 0;
  for (size_t r = 0; r * vocab < std::min(a.size(), b.size()); ++r) {
    const float* x = a.data() + r * vocab;
    const float* y = b.data() + r * vocab;
    double diff = 0, ref = 0;
    for (int i = 0; i < vocab; ++i) {
      diff = std::max(diff, std::abs(static_cast<double>(x[i]) - y[i]));
      ref = std::max(ref, std::abs(static_cast<double>(y[i])));
    }
    worst = std::max(worst, diff / ref);
    EXPECT_LE(diff / ref, tol) << what << " position " << r;
    EXPECT_EQ(std::max_element(x, x + vocab) - x, std::max_element(y, y + vocab) - y) << what << " argmax, position " << r;
  }
  return worst;
}

// Every golden sequence through both models; logits compared position by position.
void expect_same_logits(const Model& ours, const Model& ref, const std::string& model, double tol,
                        const std::string& what) {
  ASSERT_EQ(ours.config().vocab_size, ref.config().vocab_size) << what;
  const auto seqs = golden_tokens(model);
  ASSERT_GE(seqs.size(), 2u) << model;
  double worst = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    auto a = sequence_logits(ours, seqs[i]);
    auto b = sequence_logits(ref, seqs[i]);
    ASSERT_TRUE(a.is_ok()) << what << ": " << a.status().message();
    ASSERT_TRUE(b.is_ok()) << what << ": " << b.status().message();
    worst = std::max(worst, compare_logits(*a, *b, ref.config().vocab_size, tol, what + " seq" + std::to_string(i)));
  }
  ::testing::Test::RecordProperty(what, std::to_string(worst));
}

std::vector<uint8_t> encode(const std::vector<float>& x, GgmlType t) {
  std::vector<uint8_t> out;
  if (t == GgmlType::F32) {
    out.resize(x.size() * 4);
    std::memcpy(out.data(), x.data(), out.size());
    return out;
  }
  out.resize(x.size() * 2);
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t h = t == GgmlType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

// `f` rewritten with every matrix (2-D tensor) in `type` (via float32) and everything else
// as it was; type F32 with `all` rewrites 1-D tensors too (the dequantized twin).
std::vector<uint8_t> rewrite(const GgufFile& f, GgmlType type, bool all = false) {
  GgufBuilder b;
  for (const auto& kv : f.metadata())
    if (kv.key != "general.alignment") b.copy(kv.key, kv.value);
  for (const auto& t : f.tensors()) {
    if ((t.ne.size() != 2 && !all) || t.type == type) {
      b.tensor(t.name, t.type, t.ne, std::vector<uint8_t>(t.data, t.data + t.nbytes));
      continue;
    }
    std::vector<float> x(t.n_elements);
    EXPECT_TRUE(dequantize_to_f32(t, x.data()).is_ok()) << t.name;
    b.tensor(t.name, type, t.ne, encode(x, type));
  }
  return b.build();
}

uint64_t fnv1a64(const void* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const uint8_t*>(p)[i]) * 0x100000001b3ull;
  return h;
}

struct Case {
  std::string file;   // under tests/data/gguf_models
  std::string model;  // under tests/data/models
};
std::vector<Case> cases(bool quantized) {
  std::vector<Case> out;
  const auto& m = manifest();
  if (m.is_discarded()) return out;
  for (const auto& [file, model] : m["model_of"].items()) {
    const bool q = m["dequantized"].contains(file);
    if (q == quantized) out.push_back({file, model.get<std::string>()});
  }
  return out;
}
std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.file.substr(0, info.param.file.size() - 5);
  for (auto& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

const Model& safetensors_model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Model>> cache;
  auto& m = cache[name];
  if (!m) {
    auto r = Model::load(std::string(NIBBLE_TEST_DATA) + "/models/" + name);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    if (r) m = std::move(*r);
  }
  return *m;
}

class DenseGguf : public ::testing::TestWithParam<Case> {};

TEST_P(DenseGguf, SameLogitsAsSafetensorsInF32F16Bf16) {
  const auto& [file, model] = GetParam();
  const std::string path = gguf_dir() + "/" + file;
  auto on_disk = Model::load(path);
  ASSERT_TRUE(on_disk.is_ok()) << on_disk.status().message();
  const Model& ref = safetensors_model(model);
  ASSERT_EQ((*on_disk)->config().n_layers, ref.config().n_layers);
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  for (GgmlType t : {GgmlType::F32, GgmlType::BF16, GgmlType::F16}) {
    const std::string what = file + " as " + std::string(ggml_type_name(t));
    // F16 holds bf16 weights exactly except those below f16's normal range (~6e-5).
    const double tol = t == GgmlType::F16 ? 1e-4 : 1e-5;
    const GgufTensor* q = f->find_tensor("blk.0.attn_q.weight");
    ASSERT_NE(q, nullptr);
    if (q->type == t) {
      expect_same_logits(**on_disk, ref, model, tol, what + " (gguf-py)");
      continue;
    }
    auto mem = test::model_from_gguf_bytes(rewrite(*f, t), what);
    ASSERT_TRUE(mem.is_ok()) << mem.status().message();
    expect_same_logits(*mem->model, ref, model, tol, what);
  }
}

INSTANTIATE_TEST_SUITE_P(Gguf, DenseGguf, ::testing::ValuesIn(cases(false)), case_name);

class QuantGguf : public ::testing::TestWithParam<Case> {};

TEST_P(QuantGguf, SameLogitsAsDequantizedTwin) {
  const auto& [file, model] = GetParam();
  const std::string path = gguf_dir() + "/" + file;
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  // nibble's dequantization is gguf-py's, bit for bit, tensor by tensor.
  const auto& hashes = manifest()["dequantized"][file];
  ASSERT_EQ(hashes.size(), f->tensors().size());
  for (const auto& t : f->tensors()) {
    ASSERT_TRUE(hashes.contains(t.name)) << t.name;
    EXPECT_EQ(std::string(ggml_type_name(t.type)), hashes[t.name]["type"].get<std::string>()) << t.name;
    std::vector<float> x(t.n_elements);
    ASSERT_TRUE(dequantize_to_f32(t, x.data()).is_ok()) << t.name;
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(fnv1a64(x.data(), x.size() * 4)));
    EXPECT_EQ(std::string(hex), hashes[t.name]["fnv1a64"].get<std::string>()) << file << ": " << t.name;
  }
  auto quant = Model::load(path);
  ASSERT_TRUE(quant.is_ok()) << quant.status().message();
  auto twin = test::model_from_gguf_bytes(rewrite(*f, GgmlType::F32, /*all=*/true), file + " twin");
  ASSERT_TRUE(twin.is_ok()) << twin.status().message();
  expect_same_logits(**quant, *twin->model, model, 1e-6, file + " vs twin");
}

INSTANTIATE_TEST_SUITE_P(Gguf, QuantGguf, ::testing::ValuesIn(cases(true)), case_name);

TEST(GgufModels, CommittedSetCoversEveryType) {
  std::set<std::string> types;
  for (const auto& c : cases(false)) types.insert(c.file.substr(c.file.find('.') + 1));
  for (const auto& c : cases(true)) types.insert(c.file.substr(c.file.find('.') + 1));
  for (const char* t : {"f32.gguf", "f16.gguf", "bf16.gguf", "q4_0.gguf", "q4_1.gguf", "q5_0.gguf", "q5_1.gguf",
                        "q8_0.gguf", "mxfp4.gguf"})
    EXPECT_TRUE(types.count(t)) << t;
}

// The llama architecture's Q/K rows really are stored permuted (so the tests above exercise the
// un-permutation): the GGUF's attn_q rows differ from the safetensors rows in order only.
TEST(GgufModels, LlamaQkRowsArePermutedInTheFile) {
  auto f = GgufFile::open(gguf_dir() + "/llama3_classic.bf16.gguf");
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  auto st = SafetensorsSource::open_dir(std::string(NIBBLE_TEST_DATA) + "/models/llama3_classic");
  ASSERT_TRUE(st.is_ok()) << st.status().message();
  auto hf = (*st)->get("model.layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(hf.is_ok());
  const GgufTensor* g = f->find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->nbytes, hf->nbytes);
  EXPECT_NE(std::memcmp(g->data, hf->data, g->nbytes), 0);
  const size_t row = g->row_bytes;
  const int head_dim = 16, half = 8;
  for (int r = 0; r < static_cast<int>(g->rows); ++r) {  // GGUF row h*hd + 2i + j = HF row h*hd + j*half + i
    const int h = r / head_dim, i = (r % head_dim) / 2, j = r % 2;
    const int src = h * head_dim + j * half + i;
    EXPECT_EQ(std::memcmp(g->data + r * row, static_cast<const uint8_t*>(hf->data) + src * row, row), 0) << r;
  }
}

// `nibble info` and `nibble logits` take a .gguf path.
TEST(GgufModels, InfoAndLogitsCommands) {
  const std::string path = gguf_dir() + "/llama3_classic.q4_1.gguf";
  auto info = test::run_nibble("info -m '" + path + "' --json");
  ASSERT_EQ(info.status, 0) << info.out;
  EXPECT_NE(info.out.find("\"layers\": 3"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("q4_1"), std::string::npos) << info.out;
  auto logits = test::run_nibble("logits -m '" + path + "' --tokens 5,17,300");
  ASSERT_EQ(logits.status, 0) << logits.out.substr(0, 2000);
  auto j = nlohmann::json::parse(logits.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << logits.out.substr(0, 2000);
  ASSERT_EQ(j["logits"].size(), 3u);
  EXPECT_EQ(j["logits"][0].size(), 997u);
  // The same numbers as the library computes.
  auto m = Model::load(path);
  ASSERT_TRUE(m.is_ok());
  auto ref = sequence_logits(**m, std::vector<int32_t>{5, 17, 300});
  ASSERT_TRUE(ref.is_ok());
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 997; i += 97) EXPECT_FLOAT_EQ(j["logits"][r][i].get<float>(), (*ref)[r * 997 + i]);
}

// A tiny GGUF with a tokenizer and chat template runs end to end.
TEST(GgufModels, RunOnTinyGguf) {
  const std::string path = gguf_dir() + "/llama3_classic.q4_1.gguf";
  auto r = test::run_nibble("run -m '" + path + "' -p 'Hello world, the' -n 5 --temp 0 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto line = r.out.substr(r.out.rfind("\n{"));
  auto j = nlohmann::json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_GE(j["generated_tokens"].get<int>(), 1);
  EXPECT_LE(j["generated_tokens"].get<int>(), 5);
  auto chat = test::run_nibble("run -m '" + path + "' --chat -p 'Hi' -n 3 --temp 0 --json");
  ASSERT_EQ(chat.status, 0) << chat.out;
}

}  // namespace
}  // namespace nibble

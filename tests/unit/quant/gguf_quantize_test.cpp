// `nibble quantize` from a GGUF file: the f32 export computes the GGUF model's logits (to fp32
// rounding), carries its tokenizer, chat template and eos ids, and every quantized folder loads
// and stays near the GGUF model. The tiny GGUF files are llama.cpp conversions of the golden
// models (tests/data/gguf_models, tools/make_gguf_models.py).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "io/gguf.h"
#include "model/model.h"
#include "runtime/gguf_export.h"
#include "runtime/model_bundle.h"
#include "runtime/single_sequence.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;

std::string gguf_path(const std::string& name) { return std::string(NIBBLE_TEST_DATA) + "/gguf_models/" + name; }

std::string temp_dir(const std::string& tag) {
  return (fs::temp_directory_path() / ("nibble_gguf_q_" + tag + "_" + std::to_string(::getpid()))).string();
}

// max |a - b| / max |b| over each position's logits, the worst position.
double max_rel_err(const std::vector<float>& a, const std::vector<float>& b, int vocab) {
  double worst = 0;
  for (size_t p = 0; p * vocab < b.size(); ++p) {
    double num = 0, den = 0;
    for (int i = 0; i < vocab; ++i) {
      num = std::max(num, std::abs(double(a[p * vocab + i]) - b[p * vocab + i]));
      den = std::max(den, std::abs(double(b[p * vocab + i])));
    }
    worst = std::max(worst, num / den);
  }
  return worst;
}

double nmse(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return num / den;
}

const std::vector<int32_t> kTokens = {5, 17, 300, 2, 99, 640, 12, 7, 450, 31, 8, 200};

class GgufQuantize : public ::testing::TestWithParam<const char*> {};

// Llama (Q/K rows un-permuted, rope_freqs -> llama3 rope_scaling, Q4_1 blocks), Qwen2 (biases,
// Q8_0) and Gemma 3 (norms stored as 1 + w, softcap, sliding layers).
INSTANTIATE_TEST_SUITE_P(Models, GgufQuantize,
                         ::testing::Values("llama3_classic.q4_1.gguf", "qwen2_bias.q8_0.gguf",
                                           "gemma3_classic_softcap.f32.gguf", "llama_linear_sharded.f16.gguf"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST_P(GgufQuantize, F32ExportMatchesAndEveryFormatLoads) {
  const std::string path = gguf_path(GetParam());
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
  auto gguf = Model::load(path);
  ASSERT_TRUE(gguf.is_ok()) << gguf.status().message();
  const int vocab = (*gguf)->config().vocab_size;
  auto ref = sequence_logits(**gguf, kTokens);
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();

  // The unquantized export: same logits up to fp32 rounding, same tokenizer and eos ids.
  const std::string base = temp_dir("f32");
  quant::QuantizeOptions f32;
  f32.format = "f32";
  auto rep = quantize_any(path, base, f32);
  ASSERT_TRUE(rep.is_ok()) << rep.status().message();
  EXPECT_EQ(rep->n_quantized, 0);
  auto exported = Model::load(base);
  ASSERT_TRUE(exported.is_ok()) << exported.status().message();
  EXPECT_EQ((*exported)->config().eos_token_ids, (*gguf)->config().eos_token_ids);
  EXPECT_EQ((*exported)->config().bos_token_id, (*gguf)->config().bos_token_id);
  EXPECT_EQ((*exported)->config().tie_word_embeddings, (*gguf)->config().tie_word_embeddings);
  EXPECT_EQ((*exported)->stats().n_params, (*gguf)->stats().n_params);
  auto got = sequence_logits(**exported, kTokens);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  const double err = max_rel_err(*got, *ref, vocab);
  RecordProperty("f32_max_rel_err", std::to_string(err));
  EXPECT_LT(err, 2e-5) << "the f32 export must compute the GGUF model's logits";


  // bf16 export: loads, and its rounding is the only difference.
  quant::QuantizeOptions bf16;
  bf16.format = "bf16";
  const std::string base16 = temp_dir("bf16");
  ASSERT_TRUE(quantize_any(path, base16, bf16).is_ok());
  auto m16 = Model::load(base16);
  ASSERT_TRUE(m16.is_ok()) << m16.status().message();
  auto l16 = sequence_logits(**m16, kTokens);
  ASSERT_TRUE(l16.is_ok());
  EXPECT_LT(nmse(*l16, *ref), 1e-3);
  fs::remove_all(base16);

  // Every format, quantized from the fp32 base: loads and stays close (a tiny random model, so
  // the bounds are sanity bounds, as in QuantizeRoundTrip).
  for (const char* f : {"nf4", "int4", "mxfp4", "nvfp4", "fp8"}) {
    quant::QuantizeOptions opt;
    opt.format = f;
    if (std::string(f) == "int4") opt.group = 32;  // hidden 96 is not a multiple of 128
    const std::string out = temp_dir(f);
    auto r = quantize_any(path, out, opt);
    ASSERT_TRUE(r.is_ok()) << f << ": " << r.status().message();
    auto m = Model::load(out);
    ASSERT_TRUE(m.is_ok()) << f << ": " << m.status().message();
    // llama_linear_sharded's hidden size 80 fits neither int4 g32 nor MXFP4's 32-blocks: kept.
    if (r->n_quantized > 0) EXPECT_LT((*m)->stats().n_bytes, (*exported)->stats().n_bytes) << f;
    auto l = sequence_logits(**m, kTokens);
    ASSERT_TRUE(l.is_ok()) << f;
    const double e = nmse(*l, *ref);
    RecordProperty(std::string("nmse_") + f, std::to_string(e));
    EXPECT_LT(e, std::string(f) == "fp8" ? 2e-2 : 0.2) << f;
    fs::remove_all(out);
  }
  fs::remove_all(base);
}

// The tiny GGUF files carry no tokenizer; the bundled model does (skipped when absent). Only
// the metadata is converted here, not the weights.
TEST(GgufQuantize, TokenizerFilesOfTheBundledModel) {
  const std::string path = default_model_path();
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
  auto hf = gguf_as_hf(path, /*with_weights=*/false);
  ASSERT_TRUE(hf.is_ok()) << hf.status().message();
  EXPECT_EQ(hf->weights, nullptr);
  auto tok_gguf = load_tokenizer(path);
  auto tok_hf = Tokenizer::from_json(hf->tokenizer_json);
  ASSERT_TRUE(tok_gguf.is_ok() && tok_hf.is_ok());
  for (const char* text : {"Hello world, 12 apples and 3.5 pears!\n  indented", "<|im_start|>user\nhi<|im_end|>"}) {
    EXPECT_EQ(tok_hf->encode(text, true), tok_gguf->encode(text, true)) << text;
    EXPECT_EQ(tok_hf->encode(text, false), tok_gguf->encode(text, false)) << text;
  }
  auto file = GgufFile::open(path);
  ASSERT_TRUE(file.is_ok());
  auto tmpl = file->get_string("tokenizer.chat_template");
  ASSERT_TRUE(tmpl.is_ok());
  EXPECT_EQ(hf->tokenizer_config.value("chat_template", ""), std::string(*tmpl));
  auto eos = file->get_int("tokenizer.ggml.eos_token_id");
  ASSERT_TRUE(eos.is_ok());
  EXPECT_EQ(hf->tokenizer_config.value("eos_token", ""), tok_gguf->id_to_token(static_cast<int32_t>(*eos)));
  EXPECT_EQ(hf->generation_config["eos_token_id"], hf->config["eos_token_id"]);
  // The chat templates load from the written tokenizer_config.json as from the GGUF.
  auto from_cfg = chat_templates_from_config(hf->tokenizer_config);
  EXPECT_TRUE(from_cfg.is_ok()) << from_cfg.status().message();
}

TEST(GgufQuantize, RejectsUnknownFormat) {
  const std::string path = gguf_path("qwen2_bias.q8_0.gguf");
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
  quant::QuantizeOptions opt;
  opt.format = "q4_k";
  auto r = quantize_any(path, temp_dir("bad"), opt);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("q4_k"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace nibble

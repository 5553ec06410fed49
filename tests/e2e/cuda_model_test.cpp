// The GPU backend (src/model/cuda) against the CPU oracle and the transformers goldens: logits
// within bf16 tolerance, prefill in chunks and mixed batches, greedy decoding through the CUDA
// graphs token for token, and out-of-memory errors. Skips, saying so, where no GPU is present.
#include <gtest/gtest.h>

#ifndef NIBBLE_HAVE_CUDA

TEST(CudaModel, Skipped) { GTEST_SKIP() << "built without the CUDA backend (NIBBLE_CUDA=OFF or no nvcc)"; }

#else

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <cuda_runtime_api.h>

#include "cuda_test_skip.h"
#include "golden_util.h"
#include "io/model_config.h"
#include "model/cuda/cuda_model.h"
#include "ops/cuda/device.h"
#include "quant/quantize_model.h"
#include "quant/st_writer.h"
#include "runtime/model_bundle.h"
#include "runtime/session.h"
#include "runtime/single_sequence.h"

namespace nibble::cuda {
namespace {

namespace fs = std::filesystem;

using Golden = test::GoldenSeq;
using test::read_goldens;
std::vector<std::string> model_dirs() { return test::golden_model_dirs(); }

// bf16 activations through a few layers: the normalized error of each row stays under 3e-2 and
// the argmax agrees wherever the reference's top two are further apart than that error allows.
void expect_close(const std::vector<float>& ours, const std::vector<float>& ref, int vocab, const std::string& what) {
  ASSERT_EQ(ours.size(), ref.size()) << what;
  double worst = 0;
  for (size_t r = 0; r < ref.size() / vocab; ++r) {
    const float* a = ours.data() + r * vocab;
    const float* b = ref.data() + r * vocab;
    double num = 0, den = 0, max_diff = 0;
    for (int i = 0; i < vocab; ++i) {
      ASSERT_TRUE(std::isfinite(a[i])) << what << " row " << r;
      num += (a[i] - b[i]) * double(a[i] - b[i]);
      den += double(b[i]) * b[i];
      max_diff = std::max(max_diff, std::abs(double(a[i]) - b[i]));
    }
    const double rel = std::sqrt(num / den);
    worst = std::max(worst, rel);
    EXPECT_LE(rel, 3e-2) << what << " row " << r;
    std::vector<float> sorted(b, b + vocab);
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
    if (sorted[0] - sorted[1] > 2 * max_diff) {  // braces: EXPECT_EQ expands to an if / else
      EXPECT_EQ(std::max_element(a, a + vocab) - a, std::max_element(b, b + vocab) - b) << what << " argmax, row " << r;
    }
  }
  ::testing::Test::RecordProperty(what, std::to_string(worst));
}

class CudaGoldens : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaGoldens, LogitsMatchTransformersInBf16) {
  SKIP_WITHOUT_GPU();
  auto cpu = Model::load(GetParam());
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().message();
  auto gpu = CudaModel::create(**cpu);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
  const int vocab = (*gpu)->config().vocab_size;
  for (const Golden& g : read_goldens(GetParam())) {
    // Prefill at once (tiled attention), in chunks over the cache, and one token at a time (the
    // decode path: CUDA graphs, each sequence_logits call with a cache of its own size).
    for (int chunk : {0, 5, 1}) {
      auto logits = sequence_logits(**gpu, g.tokens, chunk);
      ASSERT_TRUE(logits.is_ok()) << logits.status().message();
      expect_close(*logits, g.logits, vocab, "T" + std::to_string(g.tokens.size()) + "_chunk" + std::to_string(chunk));
    }
  }
}

// Decoding on the GPU (decode steps replayed from CUDA graphs after the first two) follows the
// CPU backend token for token wherever the CPU's top two logits are further apart than twice the
// largest GPU-CPU difference of that row (elsewhere bf16 may pick either: counted, not compared),
// and the device-side greedy pick equals the argmax of the logits the GPU returns.
TEST_P(CudaGoldens, GreedyDecodingFollowsTheCpu) {
  SKIP_WITHOUT_GPU();
  auto cpu = Model::load(GetParam());
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().message();
  auto gpu = CudaModel::create(**cpu);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
  const Model& m = **cpu;
  const int vocab = m.config().vocab_size;
  const auto goldens = read_goldens(GetParam());
  // Three sequences decoded together (one batch per step: a graph of 3 tokens).
  std::vector<std::vector<int32_t>> prompts = {goldens[0].tokens, goldens[1].tokens, goldens[2].tokens};
  auto kc = m.make_kv_cache(1024);
  auto kg = (*gpu)->make_kv_cache(1024);
  ASSERT_TRUE(kc.is_ok() && kg.is_ok());
  std::vector<BlockTable> tc(3), tg(3);
  std::vector<int32_t> cur(3);
  int compared = 0, near_ties = 0;
  for (int step = 0; step < 32; ++step) {
    ForwardBatch bc, bg;
    for (int s = 0; s < 3; ++s) {
      std::span<const int32_t> toks = step == 0 ? std::span<const int32_t>(prompts[s]) : std::span<const int32_t>(&cur[s], 1);
      ASSERT_TRUE((*kc)->reserve(tc[s], tc[s].n_tokens + static_cast<int>(toks.size())).is_ok());
      ASSERT_TRUE((*kg)->reserve(tg[s], tg[s].n_tokens + static_cast<int>(toks.size())).is_ok());
      bc.add(toks, tc[s].n_tokens, tc[s], 16, false);
      bg.add(toks, tg[s].n_tokens, tg[s], 16, false);
    }
    std::vector<float> lc, lg;
    std::vector<int32_t> ng;
    ASSERT_TRUE(m.forward(bc, **kc, lc).is_ok());
    auto st = (*gpu)->forward(bg, **kg, lg);
    ASSERT_TRUE(st.is_ok()) << st.message();
    // The same step again, picking on the device (it rewrites the same K/V into the same slots).
    st = (*gpu)->forward_greedy(bg, **kg, ng);
    ASSERT_TRUE(st.is_ok()) << st.message();
    for (int s = 0; s < 3; ++s) {
      const int n = step == 0 ? static_cast<int>(prompts[s].size()) : 1;
      tc[s].n_tokens += n;
      tg[s].n_tokens += n;
      const float* rc = lc.data() + static_cast<size_t>(s) * vocab;
      const float* rg = lg.data() + static_cast<size_t>(s) * vocab;
      float max_diff = 0;
      for (int i = 0; i < vocab; ++i) max_diff = std::max(max_diff, std::abs(rc[i] - rg[i]));
      std::vector<float> sorted(rc, rc + vocab);
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
      const int32_t want = static_cast<int32_t>(std::max_element(rc, rc + vocab) - rc);
      const int32_t gpu_argmax = static_cast<int32_t>(std::max_element(rg, rg + vocab) - rg);
      EXPECT_EQ(ng[s], gpu_argmax) << "device argmax, sequence " << s << " step " << step;
      if (sorted[0] - sorted[1] > 2 * max_diff) {
        EXPECT_EQ(gpu_argmax, want) << "sequence " << s << " step " << step;
        ++compared;
      } else {
        ++near_ties;
      }
      cur[s] = want;  // both follow the CPU's choice
    }
  }
  RecordProperty("compared_tokens", compared);
  RecordProperty("near_ties", near_ties);
  EXPECT_GE(compared, 48) << "too many near-ties (" << near_ties << ") to say anything";
}

std::string name_of(const ::testing::TestParamInfo<std::string>& info) { return fs::path(info.param).filename().string(); }
INSTANTIATE_TEST_SUITE_P(Models, CudaGoldens, ::testing::ValuesIn(model_dirs()), name_of);

TEST(CudaModel, OutOfMemoryNamesTheBytes) {
  SKIP_WITHOUT_GPU();
  auto cpu = Model::load(model_dirs()[0]);
  ASSERT_TRUE(cpu.is_ok());
  auto gpu = CudaModel::create(**cpu);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
  auto kv = (*gpu)->make_kv_cache(2'000'000'000);
  ASSERT_FALSE(kv.is_ok());
  EXPECT_EQ(kv.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(kv.status().message().find("GiB free"), std::string::npos) << kv.status().message();
  // The model still works after the refusal.
  auto logits = sequence_logits(**gpu, std::vector<int32_t>{1, 2, 3});
  EXPECT_TRUE(logits.is_ok()) << logits.status().message();
}

TEST(CudaModel, RandomNf4ModelRuns) {
  SKIP_WITHOUT_GPU();
  auto cpu = Model::load(model_dirs()[0]);
  ASSERT_TRUE(cpu.is_ok());
  for (W4Format f : {W4Format::kNf4, W4Format::kInt4, W4Format::kMxfp4}) {
    ModelConfig c = (*cpu)->config();
    auto gpu = CudaModel::create_random(c, f, 7);
    if (!gpu.is_ok() && gpu.status().code() == StatusCode::kInvalidArgument) continue;  // shape the format rejects
    ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
    auto logits = sequence_logits(**gpu, std::vector<int32_t>{1, 2, 3, 4, 5});
    ASSERT_TRUE(logits.is_ok()) << logits.status().message();
    for (float x : *logits) ASSERT_TRUE(std::isfinite(x)) << w4_format_name(f);
  }
}

// A random Llama-shaped model large enough for every linear layer to take the packed 4-bit path
// (K % 128 == 0; every part of q/k/v and gate/up fills whole nested blocks of 256 NF4 absmax),
// written as a HuggingFace folder in f32.
std::string write_random_llama(const fs::path& dir) {
  constexpr int kHidden = 256, kInter = 512, kHeads = 4, kKv = 2, kHeadDim = 64, kLayers = 2, kVocab = 512;
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 64, "num_hidden_layers": 2, "vocab_size": 512, "hidden_act": "silu", "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0, "max_position_embeddings": 1024, "tie_word_embeddings": false,
    "bos_token_id": 1, "eos_token_id": 2})";
  std::mt19937 gen(1234);
  std::vector<quant::OutTensor> t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float std, float mean = 0) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::normal_distribution<float> d(mean, std);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = d(gen);
    t.push_back(quant::make_out(name, "F32", std::move(shape), v.data(), v.size()));
  };
  add("model.embed_tokens.weight", {kVocab, kHidden}, 1.0f);
  add("lm_head.weight", {kVocab, kHidden}, 0.06f);
  add("model.norm.weight", {kHidden}, 0.05f, 1.0f);
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {kHidden}, 0.05f, 1.0f);
    add(p + "post_attention_layernorm.weight", {kHidden}, 0.05f, 1.0f);
    // Different spreads per projection, so the parts of a fused weight have different offsets.
    add(p + "self_attn.q_proj.weight", {kHeads * kHeadDim, kHidden}, 0.08f);
    add(p + "self_attn.k_proj.weight", {kKv * kHeadDim, kHidden}, 0.2f);
    add(p + "self_attn.v_proj.weight", {kKv * kHeadDim, kHidden}, 0.05f);
    add(p + "self_attn.o_proj.weight", {kHidden, kHeads * kHeadDim}, 0.04f);
    add(p + "mlp.gate_proj.weight", {kInter, kHidden}, 0.1f);
    add(p + "mlp.up_proj.weight", {kInter, kHidden}, 0.03f);
    add(p + "mlp.down_proj.weight", {kHidden, kInter}, 0.05f);
  }
  EXPECT_TRUE(quant::write_safetensors((dir / "model.safetensors").string(), t).is_ok());
  return dir.string();
}

// write_random_llama's linear weights as packed NF4 (blocks of 64) on the device, fused as the
// GPU model fuses them (q|k|v, gate|up, o, down: every part a multiple of 16 rows): codes plus
// fp16 or fp32 absmax, or where double quantization is kept, 1-byte absmax codes, each part's
// nested absmax (one fp32 per 256 blocks) and the 256-entry map.
size_t nf4_linear_device_bytes(Nf4Absmax form) {
  const std::vector<std::vector<int64_t>> fused = {{256, 128, 128}, {256}, {512, 512}, {256}};  // rows of each part
  const int64_t ks[] = {256, 256, 256, 512};
  size_t b = 0;
  for (int l = 0; l < 2; ++l)
    for (size_t i = 0; i < fused.size(); ++i) {
      int64_t rows = 0, nested = 0;
      for (int64_t r : fused[i]) {
        rows += r;
        nested += (r * ks[i] / 64 + 255) / 256;
      }
      const int64_t blocks = rows * ks[i] / 64;
      const int64_t absmax = form == Nf4Absmax::kNested ? blocks + 4 * nested + 4 * 256
                             : form == Nf4Absmax::kFp16 ? 2 * blocks
                                                        : 4 * blocks;
      b += static_cast<size_t>(rows * ks[i] / 2 + absmax);
    }
  return b;
}

// Bytes one step must read for the same weights: the checkpoint's own format (1-byte absmax
// codes and nested absmax when double-quantized) whatever form the GPU holds, plus the bf16 LM
// head and the norms (CudaModel::weight_stream_bytes).
size_t nf4_stream_bytes(bool double_quant) {
  const int64_t shapes[][2] = {{256, 256}, {128, 256}, {128, 256}, {256, 256}, {512, 256}, {512, 256}, {256, 512}};
  size_t b = 512 * 256 * 2;
  for (int l = 0; l < 2; ++l) {
    for (const auto& s : shapes) {
      const int64_t blocks = s[0] * s[1] / 64;
      b += static_cast<size_t>(s[0] * s[1] / 2 + (double_quant ? blocks + (blocks + 255) / 256 * 4 : 4 * blocks));
    }
    b += 4 * 256;
  }
  return b;
}

// Checkpoints quantized by `nibble quantize` (bitsandbytes NF4 with and without double
// quantization, INT4 group 128, MXFP4) run on the GPU's packed 4-bit path and give the CPU's
// logits on the same file, within bf16 tolerance. NF4 absmax go as fp16 by default (double-
// quantized ones widened first), as fp32 with Nf4Scales::kFp32, and double-quantized NF4 is kept
// as the file has it with Nf4Scales::kDoubleQuant (fused q/k/v with three offsets, gate|up
// interleaved; plain NF4 then goes as fp32); the step's byte count is the file's in every form.
TEST(CudaModel, QuantizedCheckpointsFollowTheCpu) {
  SKIP_WITHOUT_GPU();
  const fs::path root = fs::temp_directory_path() / ("nibble_cuda_quant_" + std::to_string(::getpid()));
  const std::string src = write_random_llama(root / "f32");
  struct Case {
    const char* name;
    quant::QuantizeOptions opt;
    Nf4Scales scales;
    const char* gpu_format;
    Nf4Absmax form;  // the NF4 absmax form expected on the device
  };
  const Case cases[] = {{"nf4-dq", {"nf4", 0, true}, Nf4Scales::kAuto, "nf4", Nf4Absmax::kFp16},
                        {"nf4-dq-fp32", {"nf4", 0, true}, Nf4Scales::kFp32, "nf4", Nf4Absmax::kFp32},
                        {"nf4-dq-kept", {"nf4", 0, true}, Nf4Scales::kDoubleQuant, "nf4", Nf4Absmax::kNested},
                        {"nf4", {"nf4", 0, false}, Nf4Scales::kAuto, "nf4", Nf4Absmax::kFp16},
                        {"nf4-fp32", {"nf4", 0, false}, Nf4Scales::kDoubleQuant, "nf4", Nf4Absmax::kFp32},
                        {"int4", {"int4", 0, true}, Nf4Scales::kAuto, "int4", Nf4Absmax::kFp16},
                        {"mxfp4", {"mxfp4", 0, true}, Nf4Scales::kAuto, "mxfp4", Nf4Absmax::kFp16}};
  std::vector<int32_t> prompt(40);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 193 + 7) % 512);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dir = (root / c.name).string();
    auto rep = quant::quantize_model(src, dir, c.opt);
    ASSERT_TRUE(rep.is_ok()) << rep.status().message();
    auto cpu = Model::load(dir);
    ASSERT_TRUE(cpu.is_ok()) << cpu.status().message();
    CudaOptions co;
    co.nf4_scales = c.scales;
    auto gpu = CudaModel::create(**cpu, co);
    ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
    EXPECT_EQ((*gpu)->weight_format(), c.gpu_format);
    if (c.opt.format == "nf4") {
      EXPECT_EQ((*gpu)->linear_device_bytes(), nf4_linear_device_bytes(c.form));
      EXPECT_EQ((*gpu)->nf4_absmax(), c.form == Nf4Absmax::kFp16   ? "fp16"
                                      : c.form == Nf4Absmax::kFp32 ? "fp32"
                                                                   : "double-quantized");
      EXPECT_EQ((*gpu)->weight_stream_bytes(), nf4_stream_bytes(c.opt.double_quant));
    }
    // 40 rows at once (dequantize + GEMM), chunks of 12 (the skinny GEMV) and one token at a
    // time (the decode step's GEMV, from CUDA graphs).
    auto want = sequence_logits(**cpu, prompt);
    ASSERT_TRUE(want.is_ok()) << want.status().message();
    for (int chunk : {0, 12, 1}) {
      auto got = sequence_logits(**gpu, prompt, chunk);
      ASSERT_TRUE(got.is_ok()) << got.status().message();
      expect_close(*got, *want, 512, std::string(c.name) + "_chunk" + std::to_string(chunk));
    }
  }
  std::error_code ec;
  fs::remove_all(root, ec);
}

// The command lines' names for the NF4 absmax forms (no GPU needed).
TEST(CudaModel, Nf4ScalesNames) {
  EXPECT_EQ(parse_nf4_scales("auto").value(), Nf4Scales::kAuto);
  EXPECT_EQ(parse_nf4_scales("fp16").value(), Nf4Scales::kFp16);
  EXPECT_EQ(parse_nf4_scales("fp32").value(), Nf4Scales::kFp32);
  EXPECT_EQ(parse_nf4_scales("dq").value(), Nf4Scales::kDoubleQuant);
  auto bad = parse_nf4_scales("bf16");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'bf16'"), std::string::npos) << bad.status().message();
}

// Nf4Scales::kAuto puts NF4 absmax in fp16 when that fits, and keeps the double quantization
// when only the smaller form fits: here with a ballast allocation leaving free memory between the
// two (a Llama-3-8B-shaped random model with 64 layers: 7.1 GB kept, 7.3 GB with fp16 absmax).
TEST(CudaModel, Nf4KeepsDoubleQuantWhenFp16WouldNotFit) {
  SKIP_WITHOUT_GPU();
  auto cfg = load_model_config_file(std::string(NIBBLE_TEST_DATA) + "/../../bench/configs/llama3-8b.json");
  ASSERT_TRUE(cfg.is_ok()) << cfg.status().message();
  ModelConfig c = *cfg;
  c.vocab_size = 32000;
  c.n_layers = 64;
  c.layers.resize(64, c.layers.empty() ? LayerConfig{} : c.layers[0]);
  const size_t kept = CudaModel::random_weight_bytes(c, W4Format::kNf4, Nf4Absmax::kNested);
  const size_t wide = CudaModel::random_weight_bytes(c, W4Format::kNf4, Nf4Absmax::kFp16);
  ASSERT_GT(wide, kept + (size_t(200) << 20));
  {
    auto ample = CudaModel::create_random(c, W4Format::kNf4, 3);
    ASSERT_TRUE(ample.is_ok()) << ample.status().message();
    EXPECT_FALSE((*ample)->nf4_double_quant_kept());
    EXPECT_EQ((*ample)->nf4_absmax(), "fp16");
  }
  // Leave free: the kept form, the 256 MB check_fits keeps aside, and half the difference.
  size_t free_b = 0, total_b = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
  const size_t target = kept + (size_t(256) << 20) + (wide - kept) / 2;
  ASSERT_GT(free_b, target) << "not enough device memory for this test";
  void* ballast = nullptr;
  ASSERT_EQ(cudaMalloc(&ballast, free_b - target), cudaSuccess);
  {
    auto tight = CudaModel::create_random(c, W4Format::kNf4, 3);
    ASSERT_TRUE(tight.is_ok()) << tight.status().message();
    EXPECT_TRUE((*tight)->nf4_double_quant_kept());
    auto logits = sequence_logits(**tight, std::vector<int32_t>{1, 2, 3});
    ASSERT_TRUE(logits.is_ok()) << logits.status().message();
    for (float x : *logits) ASSERT_TRUE(std::isfinite(x));
  }
  {
    // Forcing fp32 into the same memory fails before uploading anything, naming the bytes.
    CudaOptions fp32;
    fp32.nf4_scales = Nf4Scales::kFp32;
    auto refused = CudaModel::create_random(c, W4Format::kNf4, 3, fp32);
    ASSERT_FALSE(refused.is_ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kOutOfMemory) << refused.status().message();
    EXPECT_NE(refused.status().message().find("GiB free"), std::string::npos) << refused.status().message();
  }
  cudaFree(ballast);
}

// The bundled Q4_1 GGUF (dequantized to bf16 on the GPU) answers the demo question as the CPU does.
TEST(CudaModel, BundledModelGreedyMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const std::string path = default_model_path();
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present (tools/fetch_model.sh)";
  auto bundle = load_model_bundle(path);
  ASSERT_TRUE(bundle.is_ok()) << bundle.status().message();
  auto gpu = CudaModel::create(*bundle->model);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
  auto prompt = bundle->tokenizer.encode("The capital of France is", true);
  GenerateOptions o;
  o.max_new_tokens = 16;
  o.sampling.temperature = 0;
  Session on_cpu(*bundle->model), on_gpu(**gpu);
  auto a = on_cpu.generate(prompt, o);
  auto b = on_gpu.generate(prompt, o);
  ASSERT_TRUE(a.is_ok() && b.is_ok()) << b.status().message();
  EXPECT_EQ(a->tokens, b->tokens);
}

}  // namespace
}  // namespace nibble::cuda

#endif

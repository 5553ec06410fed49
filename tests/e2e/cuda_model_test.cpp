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

#include "cuda_test_skip.h"
#include "golden_util.h"
#include "model/cuda/cuda_model.h"
#include "ops/cuda/device.h"
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

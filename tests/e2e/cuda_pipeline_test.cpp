// Pipelined decoding on the GPU backend (CudaModel::submit / collect, docs/engine.md): step s + 1
// is enqueued before step s's picks are back, its tokens and penalty histories naming them as
// prev_pick placeholders that the step's first kernel resolves on the device. Its picks must be
// exactly those of the same steps run synchronously with the ids known (same kernels, same
// logits), also across a step that grows the rows (14 sequences join mid-run: the picks buffer
// and the pinned staging are reallocated while a step is in flight). Skips where no GPU is.
#include <gtest/gtest.h>

#ifndef NIBBLE_HAVE_CUDA

TEST(CudaPipeline, Skipped) { GTEST_SKIP() << "built without the CUDA backend (NIBBLE_CUDA=OFF or no nvcc)"; }

#else

#include <cmath>
#include <filesystem>

#include "cuda_test_skip.h"
#include "golden_util.h"
#include "model/cuda/cuda_model.h"

namespace nibble::cuda {
namespace {

namespace fs = std::filesystem;

constexpr int kFirst = 6, kJoin = 14, kJoinStep = 9, kSteps = 14;

SamplingParams params_of(int seq) {
  switch (seq % 4) {
    case 0: return {.temperature = 0.0f};
    case 1: return {.temperature = 0.9f, .top_k = 20, .repeat_penalty = 1.3f, .repeat_last_n = 4};
    case 2: return {.temperature = 0.0f, .repeat_penalty = 1.5f, .repeat_last_n = -1};
    default: return {.temperature = 1.0f, .top_p = 0.9f, .min_p = 0.05f};
  }
}
double draw(int step, int seq) { return std::fmod(0.61 * (step + 1) + 0.137 * seq, 1.0); }

// Every step's picks: a prefill of kFirst prompts, decode steps, and at kJoinStep kJoin new
// sequences' prompts in the same batch as the others' next tokens.
std::vector<std::vector<int32_t>> decode(const CudaModel& m, const std::vector<int32_t>& base, bool pipelined) {
  auto kv = m.make_kv_cache(4096);
  EXPECT_TRUE(kv.is_ok()) << kv.status().message();
  const int vocab = m.config().vocab_size;
  std::vector<BlockTable> tables(kFirst + kJoin);
  std::vector<std::vector<int32_t>> history(kFirst + kJoin), picks;
  for (int q = 0; q < kFirst + kJoin; ++q) {  // prompts: the golden's tokens shifted per sequence
    for (int i = 0; i < 5 + q % 7; ++i) history[q].push_back((base[i % base.size()] + 31 * q) % vocab);
  }
  std::vector<SampleRequest> rows;
  // Step `step`'s batch: the live sequences, each with its prompt (first step) or its last pick
  // (known, or the placeholder of its row in the step before).
  auto batch_of = [&](int step, bool placeholders, ForwardBatch& b) {
    rows.clear();
    const int live = step < kJoinStep ? kFirst : kFirst + kJoin;
    for (int q = 0; q < live; ++q) {
      const bool fresh = step == 0 || (step == kJoinStep && q >= kFirst);
      std::vector<int32_t> toks;
      if (fresh) {
        toks = history[q];
      } else {
        toks = {placeholders ? prev_pick(q) : picks.back()[q]};
        history[q].push_back(toks[0]);
      }
      EXPECT_TRUE((*kv)->reserve(tables[q], tables[q].n_tokens + static_cast<int>(toks.size())).is_ok());
      b.add(toks, tables[q].n_tokens, tables[q], (*kv)->block_size(), false);
      tables[q].n_tokens += static_cast<int>(toks.size());
      rows.push_back({params_of(q), history[q], draw(step, q)});
    }
  };
  std::vector<int32_t> out;
  for (int step = 0; step < kSteps; ++step) {
    ForwardBatch b;
    if (!pipelined || step == 0) {
      batch_of(step, false, b);
      Status s = pipelined ? m.submit(b, **kv, rows) : m.forward_sample(b, **kv, rows, out);
      EXPECT_TRUE(s.is_ok()) << "step " << step << ": " << s.message();
      if (!pipelined) picks.push_back(out);
    }
    if (!pipelined) continue;
    if (step + 1 < kSteps) {
      ForwardBatch next;
      batch_of(step + 1, true, next);
      const Status s = m.submit(next, **kv, rows);
      EXPECT_TRUE(s.is_ok()) << "step " << step + 1 << ": " << s.message();
    }
    const Status s = m.collect(out);
    EXPECT_TRUE(s.is_ok()) << "step " << step << ": " << s.message();
    picks.push_back(out);
    if (step + 1 < kSteps)  // the placeholders step + 1 put in the histories, now known
      for (int q = 0; q < static_cast<int>(out.size()); ++q) history[q].back() = out[q];
  }
  EXPECT_EQ(m.in_flight(), 0);
  return picks;
}

class CudaPipeline : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaPipeline, PipelinedStepsPickWhatSynchronousStepsPick) {
  SKIP_WITHOUT_GPU();
  auto cpu = Model::load(GetParam());
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().message();
  auto gpu = CudaModel::create(**cpu);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
  const auto goldens = test::read_goldens(GetParam());
  ASSERT_FALSE(goldens.empty());
  const auto sync = decode(**gpu, goldens[0].tokens, false);
  // A fresh model, so that the pipelined run grows its buffers while a step is in flight.
  auto gpu2 = CudaModel::create(**cpu);
  ASSERT_TRUE(gpu2.is_ok()) << gpu2.status().message();
  const auto piped = decode(**gpu2, goldens[0].tokens, true);
  ASSERT_EQ(sync.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(sync.back().size(), static_cast<size_t>(kFirst + kJoin));
  EXPECT_EQ(sync, piped);
}

// A synchronous call between submit() and collect() waits for the step in flight and leaves
// its picks (and the placeholders naming them) intact.
TEST_P(CudaPipeline, SynchronousCallsBetweenStepsKeepThePipeline) {
  SKIP_WITHOUT_GPU();
  auto cpu = Model::load(GetParam());
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().message();
  auto gpu = CudaModel::create(**cpu);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
  const CudaModel& m = **gpu;
  const auto goldens = test::read_goldens(GetParam());
  const std::vector<int32_t>& prompt = goldens[0].tokens;
  auto kv = m.make_kv_cache(512);
  auto other = m.make_kv_cache(512);
  ASSERT_TRUE(kv.is_ok() && other.is_ok());
  const SampleRequest greedy{{.temperature = 0.0f}, {}, 0.0};
  const std::span<const SampleRequest> row(&greedy, 1);
  BlockTable t, u;
  ASSERT_TRUE((*kv)->reserve(t, static_cast<int>(prompt.size()) + 2).is_ok());
  ASSERT_TRUE((*other)->reserve(u, static_cast<int>(prompt.size())).is_ok());
  ForwardBatch a, c, d;
  a.add(prompt, 0, t, 16, false);
  ASSERT_TRUE(m.submit(a, **kv, row).is_ok());
  const int32_t ph = prev_pick(0);
  c.add(std::span(&ph, 1), static_cast<int>(prompt.size()), t, 16, false);
  ASSERT_TRUE(m.submit(c, **kv, row).is_ok());
  d.add(prompt, 0, u, 16, false);  // another cache, synchronously, with both steps in flight
  std::vector<int32_t> sync_pick, first, second;
  ASSERT_TRUE(m.forward_greedy(d, **other, sync_pick).is_ok());
  ASSERT_TRUE(m.collect(first).is_ok());
  ASSERT_TRUE(m.collect(second).is_ok());
  EXPECT_EQ(first, sync_pick);  // the same prompt
  // The second step read the first one's pick: the same as running it with the id known.
  ForwardBatch e;
  ASSERT_TRUE((*other)->reserve(u, static_cast<int>(prompt.size()) + 1).is_ok());
  e.add(std::span(&first[0], 1), static_cast<int>(prompt.size()), u, 16, false);
  std::vector<int32_t> known;
  ASSERT_TRUE(m.forward_greedy(e, **other, known).is_ok());
  EXPECT_EQ(second, known);
  // Placeholders with no step before, or naming a row it does not have, are refused.
  ForwardBatch f;
  const int32_t far = prev_pick(3);
  f.add(std::span(&far, 1), static_cast<int>(prompt.size()) + 1, t, 16, false);
  const Status s = m.submit(f, **kv, row);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("the step before it has 1 rows"), std::string::npos) << s.message();
  EXPECT_EQ(m.in_flight(), 0);
}

std::string name_of(const ::testing::TestParamInfo<std::string>& info) { return fs::path(info.param).filename().string(); }
INSTANTIATE_TEST_SUITE_P(Models, CudaPipeline, ::testing::ValuesIn(test::golden_model_dirs()), name_of);

}  // namespace
}  // namespace nibble::cuda

#endif

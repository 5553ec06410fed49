// CUDA errors in the middle of a run (issue 6): an error that is not sticky (out of device
// memory) fails only its call and leaves the model as good as new; a sticky one (a fault inside a
// kernel) loses the CUDA context for the whole process, and the model then answers every call at
// once with an error that says so, instead of running on, or copying stale buffers back from, a
// dead context. Skips, saying so, where no GPU is present.
//
// The sticky fault poisons the context of the process it happens in. Each test runs in a process
// of its own under ctest (gtest_discover_tests) and tools/run_gpu_checks.sh, so it cannot reach
// another test; run by hand in one process with other tests, the sticky test skips (see
// run_alone) rather than fail everything after it.
#include <gtest/gtest.h>

#ifndef NIBBLE_HAVE_CUDA

TEST(CudaErrors, Skipped) { GTEST_SKIP() << "built without the CUDA backend (NIBBLE_CUDA=OFF or no nvcc)"; }

#else

#include <cuda_runtime_api.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cuda_test_skip.h"
#include "golden_util.h"
#include "model/cuda/cuda_model.h"
#include "ops/cuda/device.h"
#include "ops/cuda/elementwise.h"
#include "runtime/session.h"

namespace nibble::cuda {
namespace {

const std::vector<int32_t> kPrompt = {1, 5, 9, 14, 2, 7};

GenerateOptions greedy(int n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.sampling.temperature = 0;
  o.stop_at_eos = false;
  return o;
}

std::unique_ptr<Model> load_cpu() {
  auto cpu = Model::load(test::golden_model_dirs()[0]);
  EXPECT_TRUE(cpu.is_ok()) << cpu.status().message();
  return cpu.is_ok() ? std::move(cpu).value() : nullptr;
}

// Takes (almost) all free device memory with plain cudaMalloc, largest pieces first, so that the
// next allocation that the model's pool cannot serve from what it already holds fails.
class MemoryHog {
 public:
  MemoryHog() {
    for (size_t piece : {size_t(1) << 30, size_t(64) << 20, size_t(2) << 20}) {
      void* p = nullptr;
      while (cudaMalloc(&p, piece) == cudaSuccess) held_.push_back(p);
      (void)cudaGetLastError();  // the refusal that ended the loop: not sticky, cleared
    }
  }
  ~MemoryHog() {
    for (void* p : held_) cudaFree(p);
  }

 private:
  std::vector<void*> held_;
};

// Fills `b` with `n_seqs` sequences of `len` tokens, every logits row wanted: with the hog in
// place, the logits ([n_seqs * len, vocab] fp32) and activations cannot be allocated.
void big_batch(KvCache& kv, std::vector<BlockTable>& tables, std::vector<std::vector<int32_t>>& toks, int n_seqs,
               int len, ForwardBatch& b) {
  tables.assign(n_seqs, {});
  toks.assign(n_seqs, std::vector<int32_t>(len));
  for (int i = 0; i < n_seqs; ++i) {
    for (int j = 0; j < len; ++j) toks[i][j] = (i * 31 + j * 7) % 500;
    ASSERT_TRUE(kv.reserve(tables[i], len).is_ok());
    b.add(toks[i], 0, tables[i], kv.block_size(), /*all_logits=*/true);
  }
}

// Out of device memory in the middle of a run (and the other errors the model checks for before
// touching the device): each call fails with its own error, the model is not lost, and what it
// generates afterwards is what a fresh model generates.
TEST(CudaErrors, NonStickyFailureLeavesTheModelUsable) {
  SKIP_WITHOUT_GPU();
  auto cpu = load_cpu();
  ASSERT_TRUE(cpu);
  auto gpu = CudaModel::create(*cpu);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
  CudaModel& m = **gpu;

  Session before(m);
  auto ref = before.generate(kPrompt, greedy(12));
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();

  // Refused on the host: a KV cache larger than the free memory, a token outside the vocabulary.
  auto huge_kv = m.make_kv_cache(2'000'000'000);
  EXPECT_EQ(huge_kv.status().code(), StatusCode::kOutOfMemory) << huge_kv.status().message();
  auto kv = m.make_kv_cache(33 * 512);  // the big batch below, and one block for the bad token
  ASSERT_TRUE(kv.is_ok()) << kv.status().message();
  {
    BlockTable t;
    ASSERT_TRUE((*kv)->reserve(t, 2).is_ok());
    ForwardBatch b;
    const int32_t bad[] = {3, m.config().vocab_size};
    b.add(bad, 0, t, (*kv)->block_size(), false);
    std::vector<int32_t> next = {-7};
    EXPECT_EQ(m.forward_greedy(b, **kv, next).code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(next.empty());
  }

  // A real CUDA allocation failure mid-call: 32 x 500 tokens with all their logits (~64 MB of
  // logits, ~30 MB of activations) while the device has less than 2 MiB left.
  std::vector<BlockTable> tables;
  std::vector<std::vector<int32_t>> toks;
  ForwardBatch b;
  big_batch(**kv, tables, toks, 32, 500, b);
  ASSERT_FALSE(HasFatalFailure());
  {
    MemoryHog hog;
    std::vector<float> logits = {1.0f};
    const Status st = m.forward(b, **kv, logits);
    EXPECT_FALSE(st.is_ok()) << "the batch was expected to run out of device memory";
    EXPECT_EQ(st.code(), StatusCode::kOutOfMemory) << st.message();
    EXPECT_TRUE(logits.empty());
    EXPECT_TRUE(m.lost().is_ok()) << m.lost().message();
    RecordProperty("oom_message", st.message());
  }
  EXPECT_TRUE(m.lost().is_ok()) << m.lost().message();

  // The same request once the memory is back, then a generation equal to a fresh model's.
  std::vector<float> logits;
  const Status again = m.forward(b, **kv, logits);
  EXPECT_TRUE(again.is_ok()) << again.message();
  EXPECT_EQ(logits.size(), size_t(32) * 500 * m.config().vocab_size);

  Session after(m);
  auto r = after.generate(kPrompt, greedy(12));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  auto fresh = CudaModel::create(*cpu);
  ASSERT_TRUE(fresh.is_ok()) << fresh.status().message();
  Session on_fresh(**fresh);
  auto f = on_fresh.generate(kPrompt, greedy(12));
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ(r->tokens, f->tokens);
  EXPECT_EQ(r->tokens, ref->tokens);
}

// True when this test is the only one this process runs (ctest, run_gpu_checks.sh): a sticky
// fault here would fail every GPU test after it in the same process.
bool run_alone() { return ::testing::UnitTest::GetInstance()->test_to_run_count() == 1; }

// An illegal address inside a kernel: softcap_f32 (an in-place one-liner) on a pointer near null,
// on a stream of the test's own. The test sources are host C++ (tests/e2e/*.cpp), so the faulting
// kernel is a library one given a bad pointer rather than one written here.
Status fault_the_context() {
  auto pool = DevicePool::create(0);
  if (!pool) return pool.status();
  auto s = Stream::create(**pool);
  if (!s) return s.status();
  NB_TRY(softcap_f32(reinterpret_cast<float*>(uintptr_t{0x1000}), int64_t{1} << 20, 1.0f, **s));
  return (*s)->sync();  // the fault shows here
}

// A fault in the middle of a generation: the session's next forward call reports the lost
// context (the tokens before it stay with the caller), and so does every later call on the model
// and its KV caches, at once, without results.
TEST(CudaErrors, StickyFaultLosesTheModel) {
  SKIP_WITHOUT_GPU();
  if (!run_alone()) GTEST_SKIP() << "poisons this process's CUDA context: run it alone (as ctest does)";
  auto cpu = load_cpu();
  ASSERT_TRUE(cpu);
  auto gpu = CudaModel::create(*cpu);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().message();
  CudaModel& m = **gpu;

  Session first(m);
  auto ref = first.generate(kPrompt, greedy(8));
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  ASSERT_EQ(ref->tokens.size(), 8u);
  auto kv = m.make_kv_cache(256);  // made before the fault, used after it
  ASSERT_TRUE(kv.is_ok()) << kv.status().message();

  // The fault comes while the third token is handed over, before the forward call that feeds it.
  Session second(m);
  std::vector<int32_t> seen;
  Status fault;
  auto r = second.generate(kPrompt, greedy(8), [&](int32_t id) {
    seen.push_back(id);
    if (seen.size() == 3) fault = fault_the_context();
    return true;
  });
  ASSERT_FALSE(fault.is_ok()) << "the bad pointer did not fault";
  RecordProperty("fault", fault.message());
  ASSERT_FALSE(r.is_ok()) << "generated on a dead context";
  const std::string lost = r.status().message();
  EXPECT_NE(lost.find("CUDA context is lost"), std::string::npos) << lost;
  EXPECT_NE(lost.find("restart"), std::string::npos) << lost;
  // The call that met it: the session's decoding is pipelined (submit the next step, collect
  // this one; docs/engine.md).
  EXPECT_TRUE(lost.find("submit") != std::string::npos || lost.find("collect") != std::string::npos) << lost;
  EXPECT_EQ(m.lost().message(), lost);
  RecordProperty("lost", lost);
  // What came before the fault is the caller's: three tokens seen, two of them in the cache.
  EXPECT_EQ(seen, std::vector<int32_t>(ref->tokens.begin(), ref->tokens.begin() + 3));
  std::vector<int32_t> cached = kPrompt;
  cached.insert(cached.end(), ref->tokens.begin(), ref->tokens.begin() + 2);
  EXPECT_EQ(second.cached_tokens(), cached);

  // Every later call: the same error, no contents.
  BlockTable t;
  ASSERT_TRUE((*kv)->reserve(t, 4).is_ok());  // host bookkeeping only
  ForwardBatch b;
  b.add(std::span<const int32_t>(kPrompt).first(4), 0, t, (*kv)->block_size(), false);
  std::vector<float> logits = {1.0f};
  EXPECT_EQ(m.forward(b, **kv, logits).message(), lost);
  EXPECT_TRUE(logits.empty());
  std::vector<int32_t> next = {-7};
  EXPECT_EQ(m.forward_greedy(b, **kv, next).message(), lost);
  EXPECT_TRUE(next.empty());
  const SampleRequest row{SamplingParams{}, kPrompt, 0.5};
  next = {-7};
  EXPECT_EQ(m.forward_sample(b, **kv, std::span(&row, 1), next).message(), lost);
  EXPECT_TRUE(next.empty());
  EXPECT_EQ(m.make_kv_cache(256).status().message(), lost);
  EXPECT_EQ(m.measure_copy_bandwidth(1 << 20).status().message(), lost);
  EXPECT_EQ(second.generate(kPrompt, greedy(8)).status().message(), lost);
  Session third(m);
  EXPECT_EQ(third.generate(kPrompt, greedy(8)).status().message(), lost);
  // Leaving the test frees the model and its caches on the dead context: that must not crash
  // or hang either (the test's process ends normally).
}

}  // namespace
}  // namespace nibble::cuda

#endif

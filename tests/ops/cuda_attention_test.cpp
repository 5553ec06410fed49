// Paged prefill attention (src/ops/cuda/prefill_attention.cu) against the CPU twin
// ops::paged_attention (fp32) on awkward shapes: 1, 17, 100 and 2048+ query rows, cached prefixes,
// GQA 1..8, windows, softcap, head dims from the tiny test models (16, 24, 32) up to 256, several
// sequences per launch. Cache blocks are shuffled and every slot outside a sequence's context is
// NaN, so a read outside [first, pos] shows up as a non-finite output.
#include <gtest/gtest.h>

#ifndef NIBBLE_HAVE_CUDA

TEST(CudaPrefillAttention, Skipped) { GTEST_SKIP() << "built without the CUDA backend (NIBBLE_CUDA=OFF or no nvcc)"; }

#else

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "op_test_util.h"
#include "ops/cuda/attention.h"
#include "ops/cuda/elementwise.h"
#include "ops/ops.h"

namespace nibble::cuda {
namespace {

using op_test::randn;
using op_test::rng;
using namespace test;

struct SeqSpec {
  int cached, n_new;
};
struct AttnCase {
  std::string name;
  int n_heads, n_kv, hd;
  int window = 0;
  float softcap = 0.0f;
  std::vector<SeqSpec> seqs;
};

// A batch of sequences in one paged cache: host fp32 twin and device bf16 copy.
struct Batch {
  int bs = 16, max_blocks = 0, n_tokens = 0, max_q = 0;
  std::vector<int32_t> tables, positions;
  std::vector<PrefillSeq> seqs;
  std::vector<float> kc_ref, vc_ref;  // [n_blocks, bs, n_kv, hd], NaN outside the contexts
  std::vector<uint16_t> kc, vc;
};

Batch make_batch(const std::vector<SeqSpec>& specs, int n_kv, int hd, float kv_scale = 1.0f) {
  Batch b;
  int n_blocks = 0;
  for (const auto& s : specs) {
    const int blocks = (s.cached + s.n_new + b.bs - 1) / b.bs;
    b.max_blocks = std::max(b.max_blocks, blocks);
    n_blocks += blocks;
  }
  n_blocks += 3;  // a few blocks nobody owns
  std::vector<int32_t> perm(n_blocks);
  for (int i = 0; i < n_blocks; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng());
  b.tables.assign(specs.size() * std::max(b.max_blocks, 1), 0);
  const size_t row = static_cast<size_t>(n_kv) * hd;
  const size_t elems = static_cast<size_t>(n_blocks) * b.bs * row;
  b.kc_ref.assign(elems, NAN);
  b.vc_ref.assign(elems, NAN);
  int next = 0;
  for (size_t si = 0; si < specs.size(); ++si) {
    const int ctx = specs[si].cached + specs[si].n_new;
    for (int j = 0; j < (ctx + b.bs - 1) / b.bs; ++j) b.tables[si * b.max_blocks + j] = perm[next++];
    for (int p = 0; p < ctx; ++p) {
      const size_t slot = static_cast<size_t>(b.tables[si * b.max_blocks + p / b.bs]) * b.bs + p % b.bs;
      std::vector<float> kw, vw;
      to_bf16(randn(row, kv_scale), &kw);
      to_bf16(randn(row), &vw);
      std::copy(kw.begin(), kw.end(), b.kc_ref.begin() + slot * row);
      std::copy(vw.begin(), vw.end(), b.vc_ref.begin() + slot * row);
    }
    b.seqs.push_back({b.n_tokens, specs[si].n_new, static_cast<int32_t>(si)});
    for (int i = 0; i < specs[si].n_new; ++i) b.positions.push_back(specs[si].cached + i);
    b.n_tokens += specs[si].n_new;
    b.max_q = std::max(b.max_q, specs[si].n_new);
  }
  b.kc = to_bf16(b.kc_ref);  // NaN stays NaN
  b.vc = to_bf16(b.vc_ref);
  return b;
}

// Runs one case on both backends; returns the normalized error (infinite if any output is not finite).
double run_case(Stream& st, const AttnCase& c) {
  const float q_scale = c.softcap > 0 ? 3.0f : 1.0f;  // make the cap bite
  Batch b = make_batch(c.seqs, c.n_kv, c.hd);
  std::vector<float> qw;
  const auto qb = to_bf16(randn(static_cast<size_t>(b.n_tokens) * c.n_heads * c.hd, q_scale), &qw);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));

  std::vector<ops::AttnSeq> cpu_seqs;
  for (const auto& s : b.seqs) cpu_seqs.push_back({s.q_begin, s.n_q, b.tables.data() + s.table_row * b.max_blocks});
  std::vector<float> ref(qw.size());
  ops::paged_attention(qw.data(), b.positions.data(), cpu_seqs, b.kc_ref.data(), b.vc_ref.data(),
                       ops::KvLayout{b.bs, c.n_kv, c.hd}, ops::AttnParams{c.n_heads, scale, c.softcap, c.window},
                       ref.data());

  PrefillAttnParams p;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv;
  p.head_dim = c.hd;
  p.block_size = b.bs;
  p.max_blocks = b.max_blocks;
  p.scale = scale;
  p.softcap = c.softcap;
  p.window = c.window;
  auto q = to_device(st, qb);
  auto pos = to_device(st, b.positions);
  auto seqs = to_device(st, b.seqs);
  auto tables = to_device(st, b.tables);
  auto kc = to_device(st, b.kc), vc = to_device(st, b.vc);
  auto out = to_device(st, std::vector<uint16_t>(qb.size(), kBf16Nan));
  const Status s = paged_prefill_attention(q.get(), pos.get(), seqs.get(), static_cast<int>(b.seqs.size()), b.max_q,
                                           tables.get(), kc.get(), vc.get(), p, out.get(), st);
  EXPECT_TRUE(s.is_ok()) << s.message();
  EXPECT_TRUE(st.sync().is_ok());
  return rel_err(widen(to_host(st, out)), ref);
}

void check(const std::vector<AttnCase>& cases) {
  NB_REQUIRE_GPU();
  for (const auto& c : cases) {
    const double err = run_case(st, c);
    std::printf("  %-40s err %.2e\n", c.name.c_str(), err);
    EXPECT_LT(err, 1e-2) << c.name;
  }
}

TEST(CudaPrefillAttention, TinyModelHeadDims) {
  check({
      {"hd16 gqa3 (llama3_classic)", 6, 2, 16, 0, 0.0f, {{0, 1}, {0, 17}, {5, 12}}},
      {"hd16 gqa4 window48 (mistral_window)", 4, 1, 16, 48, 0.0f, {{0, 100}, {33, 47}}},
      {"hd24 gqa2 (qwen3_headdim)", 4, 2, 24, 0, 0.0f, {{0, 100}, {33, 47}, {0, 1}}},
      {"hd32 gqa2 window24 softcap (gemma3)", 2, 1, 32, 24, 5.0f, {{0, 100}, {33, 47}}},
  });
}

TEST(CudaPrefillAttention, AwkwardLengthsGqa) {
  check({
      {"hd128 gqa4 1/17/100 + prefix", 32, 8, 128, 0, 0.0f, {{0, 1}, {0, 17}, {0, 100}, {33, 47}, {500, 3}}},
      {"hd128 gqa1", 8, 8, 128, 0, 0.0f, {{0, 17}, {33, 47}}},
      {"hd128 gqa8 window100", 32, 4, 128, 100, 0.0f, {{0, 300}, {33, 47}, {250, 1}}},
      {"hd64 gqa8 many seqs", 16, 2, 64, 0, 0.0f, {{0, 1}, {3, 2}, {15, 16}, {16, 17}, {0, 64}, {64, 65}, {7, 129}, {100, 1}}},
      {"hd80 gqa4", 4, 1, 80, 0, 0.0f, {{40, 60}}},
      {"hd96 gqa2 softcap", 8, 4, 96, 0, 5.0f, {{17, 80}}},
  });
}

TEST(CudaPrefillAttention, HeadDim256WindowSoftcap) {
  check({
      {"hd256 gqa8 window64 softcap", 16, 2, 256, 64, 5.0f, {{0, 200}, {33, 47}, {0, 1}}},
      {"hd256 gqa2", 4, 2, 256, 0, 0.0f, {{0, 100}, {60, 40}}},
  });
}

TEST(CudaPrefillAttention, Long2048) {
  check({
      {"hd128 gqa4 2055 tokens", 16, 4, 128, 0, 0.0f, {{0, 2055}}},
      {"hd64 gqa1 2048 after 300 cached, window 1000", 4, 4, 64, 1000, 0.0f, {{300, 2048}, {0, 5}}},
  });
}

// Decode (one query per sequence at the end of its context) through paged_decode_attention's bf16
// path (split-K over the context, merged by the last block or inside a cluster): contexts from 1
// to 8192, GQA 1..32. A negative result: `merge` does not apply to this case (unsupported).
double run_decode_case(Stream& st, const AttnCase& c, DecodeMerge merge = DecodeMerge::kAuto) {
  std::vector<SeqSpec> specs;
  for (const auto& s : c.seqs) specs.push_back({s.cached, 1});
  const float q_scale = c.softcap > 0 ? 3.0f : 1.0f;
  Batch b = make_batch(specs, c.n_kv, c.hd);
  std::vector<float> qw;
  const auto qb = to_bf16(randn(static_cast<size_t>(b.n_tokens) * c.n_heads * c.hd, q_scale), &qw);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
  std::vector<ops::AttnSeq> cpu_seqs;
  std::vector<int32_t> token_seq;
  for (const auto& s : b.seqs) {
    cpu_seqs.push_back({s.q_begin, s.n_q, b.tables.data() + s.table_row * b.max_blocks});
    token_seq.push_back(s.table_row);
  }
  std::vector<float> ref(qw.size());
  ops::paged_attention(qw.data(), b.positions.data(), cpu_seqs, b.kc_ref.data(), b.vc_ref.data(),
                       ops::KvLayout{b.bs, c.n_kv, c.hd}, ops::AttnParams{c.n_heads, scale, c.softcap, c.window},
                       ref.data());
  DecodeAttnParams p;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv;
  p.head_dim = c.hd;
  p.block_size = b.bs;
  p.max_blocks = b.max_blocks;
  p.scale = scale;
  p.softcap = c.softcap;
  p.window = c.window;
  p.cache = CacheType::kBF16;
  p.merge = merge;
  auto q = to_device(st, qb);
  auto pos = to_device(st, b.positions);
  auto ts = to_device(st, token_seq);
  auto tables = to_device(st, b.tables);
  auto kc = to_device(st, b.kc), vc = to_device(st, b.vc);
  auto out = to_device(st, std::vector<uint16_t>(qb.size(), kBf16Nan));
  // Twice: the split-K counters must be back at zero after the first call.
  for (int rep = 0; rep < 2; ++rep) {
    const Status s = paged_decode_attention(q.get(), pos.get(), ts.get(), tables.get(), kc.get(), vc.get(),
                                            b.n_tokens, p, out.get(), st);
    if (s.code() == StatusCode::kUnsupported && merge == DecodeMerge::kCluster) return -1.0;
    EXPECT_TRUE(s.is_ok()) << s.message();
  }
  EXPECT_TRUE(st.sync().is_ok());
  return rel_err(widen(to_host(st, out)), ref);
}

TEST(CudaDecodeAttention, SplitKAgainstCpu) {
  NB_REQUIRE_GPU();
  std::vector<SeqSpec> batch64;
  std::uniform_int_distribution<int> len(0, 3000);
  for (int i = 0; i < 64; ++i) batch64.push_back({len(rng()), 1});
  const std::vector<AttnCase> cases = {
      {"hd128 gqa4 ctx 1..8192", 32, 8, 128, 0, 0.0f, {{0, 1}, {16, 1}, {99, 1}, {2048, 1}, {8191, 1}}},
      {"hd128 gqa4 batch 64", 32, 8, 128, 0, 0.0f, batch64},
      {"hd64 gqa1", 8, 8, 64, 0, 0.0f, {{32, 1}, {3999, 1}}},
      {"hd256 gqa8 window1000 softcap", 16, 2, 256, 1000, 5.0f, {{2999, 1}, {49, 1}}},
      {"hd128 gqa32 (two head chunks)", 64, 2, 128, 0, 0.0f, {{299, 1}, {999, 1}}},
      {"hd24 gqa2", 4, 2, 24, 0, 0.0f, {{99, 1}, {0, 1}}},
      {"hd16 gqa3", 6, 2, 16, 0, 0.0f, {{36, 1}, {700, 1}}},
      {"hd32 gqa2 window24 softcap", 2, 1, 32, 24, 5.0f, {{99, 1}, {4, 1}}},
      {"hd96 gqa6", 12, 2, 96, 0, 0.0f, {{500, 1}}},
  };
  for (const auto& c : cases) {
    for (DecodeMerge merge : {DecodeMerge::kAuto, DecodeMerge::kGlobal}) {
      const double err = run_decode_case(st, c, merge);
      std::printf("  %-40s %s err %.2e\n", c.name.c_str(), merge == DecodeMerge::kAuto ? "auto  " : "global", err);
      EXPECT_LT(err, 1e-2) << c.name;
    }
  }
}

// The cluster merge (sm_90: a head's 8 splits in one cluster, merged through distributed shared
// memory): idle blocks (a context shorter than the splits), two tiles a block (up to 2,048 keys),
// several tokens, two head chunks, windows and softcap, every head-dim bucket up to 128; at most 8
// clusters a case (one wave on any sm_90). Where the device has no clusters every case is refused,
// and the test says so.
TEST(CudaDecodeAttention, ClusterMergeAgainstCpu) {
  NB_REQUIRE_GPU();
  const std::vector<AttnCase> cases = {
      {"hd128 gqa4 ctx 1, 17, 1000", 8, 2, 128, 0, 0.0f, {{0, 1}, {16, 1}, {999, 1}}},
      {"hd128 gqa4 ctx 2048 (two tiles a block)", 32, 8, 128, 0, 0.0f, {{2047, 1}}},
      {"hd128 gqa32 (two head chunks)", 64, 2, 128, 0, 0.0f, {{299, 1}, {1500, 1}}},
      {"hd64 gqa1", 8, 8, 64, 0, 0.0f, {{1999, 1}}},
      {"hd96 gqa6 window 300 softcap", 12, 2, 96, 300, 5.0f, {{500, 1}, {7, 1}}},
      {"hd24 gqa2", 4, 2, 24, 0, 0.0f, {{99, 1}, {0, 1}}},
      {"hd16 gqa3", 6, 2, 16, 0, 0.0f, {{36, 1}, {700, 1}}},
  };
  int ran = 0;
  for (const auto& c : cases) {
    const double err = run_decode_case(st, c, DecodeMerge::kCluster);
    if (err < 0) continue;
    ++ran;
    std::printf("  %-40s cluster err %.2e\n", c.name.c_str(), err);
    EXPECT_LT(err, 1e-2) << c.name;
  }
  if (ran == 0) GTEST_SKIP() << "no thread-block clusters on this device: the global merge serves";
  EXPECT_EQ(ran, static_cast<int>(cases.size())) << "the cluster merge was refused for some case it should take";
}

TEST(CudaPrefillAttention, TypedFailures) {
  NB_REQUIRE_GPU();
  PrefillAttnParams p;
  p.n_heads = 6;
  p.n_kv_heads = 4;
  p.head_dim = 64;
  EXPECT_EQ(paged_prefill_attention(nullptr, nullptr, nullptr, 1, 1, nullptr, nullptr, nullptr, p, nullptr, st).code(),
            StatusCode::kInvalidArgument);
  p.n_kv_heads = 2;
  p.head_dim = 100;
  EXPECT_EQ(paged_prefill_attention(nullptr, nullptr, nullptr, 1, 1, nullptr, nullptr, nullptr, p, nullptr, st).code(),
            StatusCode::kUnsupported);
}

// Not a test: TFLOP/s of causal prefill, head dim 128, 32/8 heads (the anchors' shape).
// Run with --gtest_also_run_disabled_tests --gtest_filter='*Bench*'.
TEST(CudaPrefillAttention, DISABLED_Bench) {
  NB_REQUIRE_GPU();
  for (int n : {1024, 4096, 16384}) {
    const int n_heads = 32, n_kv = 8, hd = 128;
    Batch b;
    b.max_blocks = (n + b.bs - 1) / b.bs;
    for (int j = 0; j < b.max_blocks; ++j) b.tables.push_back(j);
    for (int i = 0; i < n; ++i) b.positions.push_back(i);
    b.seqs.push_back({0, n, 0});
    const size_t elems = static_cast<size_t>(b.max_blocks) * b.bs * n_kv * hd;
    auto kc = to_device(st, to_bf16(randn(elems))), vc = to_device(st, to_bf16(randn(elems)));
    auto q = to_device(st, to_bf16(randn(static_cast<size_t>(n) * n_heads * hd)));
    auto out = to_device(st, std::vector<uint16_t>(static_cast<size_t>(n) * n_heads * hd));
    auto pos = to_device(st, b.positions);
    auto seqs = to_device(st, b.seqs);
    auto tables = to_device(st, b.tables);
    PrefillAttnParams p;
    p.n_heads = n_heads;
    p.n_kv_heads = n_kv;
    p.head_dim = hd;
    p.max_blocks = b.max_blocks;
    p.scale = 1.0f / std::sqrt(128.0f);
    auto run = [&] {
      return paged_prefill_attention(q.get(), pos.get(), seqs.get(), 1, n, tables.get(), kc.get(), vc.get(), p,
                                     out.get(), st);
    };
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(run().is_ok());
    const double ms = median_ms(st, run, 15);
    const double flops = 4.0 * n_heads * hd * (static_cast<double>(n) * (n + 1) / 2);
    std::printf("BENCH prefill causal n=%d hd=128 heads 32/8: %.3f ms, %.1f TFLOP/s (FA2 272, cuDNN 523 at 4k)\n", n, ms,
                flops / (ms * 1e-3) / 1e12);
  }
}

// Not a test: decode attention bandwidth (K and V bytes read / time), head dim 128, 32/8 heads.
TEST(CudaPrefillAttention, DISABLED_BenchDecode) {
  NB_REQUIRE_GPU();
  const int n_heads = 32, n_kv = 8, hd = 128, bs = 16;
  for (auto [batch, ctx] : {std::pair{1, 512}, {1, 8192}, {8, 2048}, {32, 8192}, {64, 4096}, {64, 8192}}) {
    const int max_blocks = ctx / bs;
    std::vector<int32_t> tables(static_cast<size_t>(batch) * max_blocks), positions(batch, ctx - 1), token_seq(batch);
    for (size_t i = 0; i < tables.size(); ++i) tables[i] = static_cast<int32_t>(i);
    for (int b = 0; b < batch; ++b) token_seq[b] = b;
    const size_t elems = tables.size() * bs * n_kv * hd;
    auto kc = DeviceBuffer<uint16_t>::create(st, elems);
    auto vc = DeviceBuffer<uint16_t>::create(st, elems);
    ASSERT_TRUE(kc.is_ok() && vc.is_ok());
    ASSERT_TRUE(st.memset(kc.value().get(), 0x3c, elems * 2).is_ok());
    ASSERT_TRUE(st.memset(vc.value().get(), 0x3c, elems * 2).is_ok());
    auto q = to_device(st, to_bf16(randn(static_cast<size_t>(batch) * n_heads * hd)));
    auto out = to_device(st, std::vector<uint16_t>(static_cast<size_t>(batch) * n_heads * hd));
    auto pd = to_device(st, positions), ts = to_device(st, token_seq), bt = to_device(st, tables);
    DecodeAttnParams dp;
    dp.n_heads = n_heads;
    dp.n_kv_heads = n_kv;
    dp.head_dim = hd;
    dp.block_size = bs;
    dp.max_blocks = max_blocks;
    dp.scale = 1.0f / std::sqrt(128.0f);
    auto run = [&] {
      return paged_decode_attention(q.get(), pd.get(), ts.get(), bt.get(), kc.value().get(), vc.value().get(), batch, dp,
                                    out.get(), st);
    };
    ASSERT_TRUE(run().is_ok());
    const double ms = median_ms(st, run, 15);
    const double bytes = 2.0 * batch * ctx * n_kv * hd * 2;
    std::printf("BENCH decode batch %d ctx %d: %.1f us, %.2f TB/s (cuDNN 4.36 at batch 32 / 8k)\n", batch, ctx, ms * 1e3,
                bytes / (ms * 1e-3) / 1e12);
  }
}

}  // namespace
}  // namespace nibble::cuda

#endif  // NIBBLE_HAVE_CUDA

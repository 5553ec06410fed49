// nibble's CPU logits against HuggingFace transformers' fp32 logits (tools/make_goldens.py),
// for every model folder under tests/data/models.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "golden_util.h"
#include "model/model.h"
#include "runtime/single_sequence.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;

using test::GoldenSeq;
using test::read_goldens;
std::vector<std::string> model_dirs() { return test::golden_model_dirs(); }

// Per position: max |ours - ref| / max |ref| <= 2e-4, and the same argmax.
void expect_matches(const std::vector<float>& ours, const std::vector<float>& ref, int vocab,
                    const std::string& what) {
  ASSERT_EQ(ours.size(), ref.size()) << what;
  const size_t rows = ref.size() / vocab;
  double worst = 0;
  for (size_t r = 0; r < rows; ++r) {
    const float* a = ours.data() + r * vocab;
    const float* b = ref.data() + r * vocab;
    double max_diff = 0, max_ref = 0;
    for (int i = 0; i < vocab; ++i) {
      ASSERT_TRUE(std::isfinite(a[i])) << what << " row " << r;
      max_diff = std::max(max_diff, std::abs(static_cast<double>(a[i]) - b[i]));
      max_ref = std::max(max_ref, std::abs(static_cast<double>(b[i])));
    }
    const double rel = max_diff / max_ref;
    worst = std::max(worst, rel);
    EXPECT_LE(rel, 2e-4) << what << " position " << r;
    EXPECT_EQ(std::max_element(a, a + vocab) - a, std::max_element(b, b + vocab) - b)
        << what << " argmax at position " << r;
  }
  ::testing::Test::RecordProperty(what, std::to_string(worst));
}

class Goldens : public ::testing::TestWithParam<std::string> {};

TEST_P(Goldens, LogitsMatchTransformers) {
  auto model = Model::load(GetParam());
  ASSERT_TRUE(model.is_ok()) << model.status().message();
  const int vocab = (*model)->config().vocab_size;
  auto goldens = read_goldens(GetParam());
  ASSERT_GE(goldens.size(), 2u);
  bool long_seen = false;
  for (size_t i = 0; i < goldens.size(); ++i) {
    long_seen |= goldens[i].tokens.size() > 64;
    auto logits = sequence_logits(**model, goldens[i].tokens);
    ASSERT_TRUE(logits.is_ok()) << logits.status().message();
    expect_matches(*logits, goldens[i].logits, vocab, "seq" + std::to_string(i));
  }
  EXPECT_TRUE(long_seen) << "goldens need one sequence longer than 64 tokens";
}

// Prefill in chunks (each attending to the cached earlier ones) equals prefill at once.
TEST_P(Goldens, ChunkedPrefillMatches) {
  auto model = Model::load(GetParam());
  ASSERT_TRUE(model.is_ok()) << model.status().message();
  const int vocab = (*model)->config().vocab_size;
  const auto goldens = read_goldens(GetParam());
  const auto& g = goldens.back();  // the long one
  for (int chunk : {1, 5, 17}) {
    auto logits = sequence_logits(**model, g.tokens, chunk);
    ASSERT_TRUE(logits.is_ok()) << logits.status().message();
    expect_matches(*logits, g.logits, vocab, "chunk" + std::to_string(chunk));
  }
}

// One forward call mixing a prefill chunk of one sequence with decode steps of others gives
// each sequence the logits it gets alone.
TEST_P(Goldens, MixedBatchMatchesSingleSequences) {
  auto model = Model::load(GetParam());
  ASSERT_TRUE(model.is_ok()) << model.status().message();
  const Model& m = **model;
  const int vocab = m.config().vocab_size;
  const auto goldens = read_goldens(GetParam());
  ASSERT_GE(goldens.size(), 3u);
  auto kv = m.make_cache(512);
  // Sequences 1 and 2 have their prompts cached except the last token; sequence 3 (the long
  // one) prefills its first 40 tokens in the same call as their decode steps.
  std::vector<BlockTable> tables(3);
  const std::vector<const GoldenSeq*> seqs = {&goldens[1], &goldens[2], &goldens.back()};
  std::vector<float> logits;
  for (int s = 0; s < 2; ++s) {
    const auto& toks = seqs[s]->tokens;
    const int n = static_cast<int>(toks.size()) - 1;
    ASSERT_TRUE(kv->reserve(tables[s], n).is_ok());
    ForwardBatch b;
    b.add(std::span(toks).first(n), 0, tables[s], kv->block_size(), false);
    ASSERT_TRUE(m.forward(b, *kv, logits).is_ok());
    tables[s].n_tokens = n;
  }
  ForwardBatch mixed;
  for (int s = 0; s < 2; ++s) {
    const auto& toks = seqs[s]->tokens;
    ASSERT_TRUE(kv->reserve(tables[s], toks.size()).is_ok());
    mixed.add(std::span(toks).last(1), tables[s].n_tokens, tables[s], kv->block_size(), false);
  }
  ASSERT_TRUE(kv->reserve(tables[2], 40).is_ok());
  mixed.add(std::span(seqs[2]->tokens).first(40), 0, tables[2], kv->block_size(), true);
  ASSERT_TRUE(m.forward(mixed, *kv, logits).is_ok());
  ASSERT_EQ(logits.size(), static_cast<size_t>(2 + 40) * vocab);
  for (int s = 0; s < 2; ++s) {
    const size_t last = seqs[s]->tokens.size() - 1;
    std::vector<float> ours(logits.begin() + s * vocab, logits.begin() + (s + 1) * vocab);
    std::vector<float> ref(seqs[s]->logits.begin() + last * vocab, seqs[s]->logits.begin() + (last + 1) * vocab);
    expect_matches(ours, ref, vocab, "decode seq" + std::to_string(s));
  }
  std::vector<float> ours(logits.begin() + 2 * vocab, logits.end());
  std::vector<float> ref(seqs[2]->logits.begin(), seqs[2]->logits.begin() + 40 * vocab);
  expect_matches(ours, ref, vocab, "prefill chunk");
}

std::string name_of(const ::testing::TestParamInfo<std::string>& info) {
  return fs::path(info.param).filename().string();
}

INSTANTIATE_TEST_SUITE_P(Models, Goldens, ::testing::ValuesIn(model_dirs()), name_of);

}  // namespace
}  // namespace nibble

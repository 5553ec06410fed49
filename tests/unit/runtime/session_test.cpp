// Session::generate picks every token through Executor::forward_sample (on the CPU model: its
// default, forward() then sampling on the host). Seeded generations equal the host path it
// replaced: forward() for the logits, then Sampler::sample, one draw per token in order.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "model/model.h"
#include "runtime/sampler.h"
#include "runtime/session.h"

namespace nibble {
namespace {

std::unique_ptr<Model> tiny_model() {
  auto m = Model::load(std::string(NIBBLE_TEST_DATA) + "/models/llama3_classic");
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  return m.is_ok() ? std::move(m.value()) : nullptr;
}

// The loop Session::generate ran before forward_sample: logits back, sampled on the host.
std::vector<int32_t> host_path(const Model& m, const std::vector<int32_t>& prompt, const GenerateOptions& o) {
  auto kv = m.make_kv_cache(1024);
  EXPECT_TRUE(kv.is_ok());
  BlockTable table;
  std::vector<int32_t> cached, out;
  std::vector<float> logits;
  auto run = [&](std::span<const int32_t> toks) {
    for (size_t at = 0; at < toks.size(); at += o.prefill_chunk) {
      const auto part = toks.subspan(at, std::min<size_t>(o.prefill_chunk, toks.size() - at));
      EXPECT_TRUE((*kv)->reserve(table, table.n_tokens + static_cast<int>(part.size())).is_ok());
      ForwardBatch b;
      b.add(part, table.n_tokens, table, (*kv)->block_size(), false);
      EXPECT_TRUE(m.forward(b, **kv, logits).is_ok());
      table.n_tokens += static_cast<int>(part.size());
      cached.insert(cached.end(), part.begin(), part.end());
    }
  };
  run(prompt);
  Sampler sampler(o.sampling);
  const auto& eos = m.config().eos_token_ids;
  for (int i = 0; i < o.max_new_tokens; ++i) {
    const int32_t next = sampler.sample(logits, cached);
    out.push_back(next);
    if (o.stop_at_eos && std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    if (i + 1 == o.max_new_tokens) break;
    const int32_t one[1] = {next};
    run(one);
  }
  return out;
}

TEST(Session, SeededGenerationEqualsTheHostSamplingPath) {
  auto m = tiny_model();
  ASSERT_NE(m, nullptr);
  const std::vector<int32_t> prompt = {5, 17, 300, 42, 42, 9, 511, 77, 5, 17, 260};
  std::vector<SamplingParams> params = {
      {.temperature = 0.0f},
      {.temperature = 0.0f, .repeat_penalty = 1.4f, .seed = 1},
      {.temperature = 1.0f, .seed = 11},
      {.temperature = 0.8f, .top_k = 40, .top_p = 0.9f, .min_p = 0.02f, .repeat_penalty = 1.2f, .seed = 12},
      {.temperature = 1.5f, .top_p = 0.5f, .repeat_penalty = 1.3f, .repeat_last_n = -1, .seed = 13},
      {.temperature = 0.6f, .min_p = 0.1f, .repeat_penalty = 0.9f, .repeat_last_n = 4, .seed = 14},
  };
  for (size_t k = 0; k < params.size(); ++k) {
    for (int chunk : {512, 4}) {
      GenerateOptions o;
      o.max_new_tokens = 24;
      o.stop_at_eos = false;
      o.prefill_chunk = chunk;
      o.sampling = params[k];
      Session session(*m, 1024);
      auto r = session.generate(prompt, o);
      ASSERT_TRUE(r.is_ok()) << r.status().message();
      EXPECT_EQ(r->tokens, host_path(*m, prompt, o)) << "params " << k << " chunk " << chunk;
      ASSERT_EQ(r->tokens.size(), 24u);
      // The cache holds the prompt and every token but the last.
      EXPECT_EQ(session.cached_tokens().size(), prompt.size() + 23);
    }
  }
}

// A second turn reuses the cached prefix and still draws from a fresh generator of its seed.
TEST(Session, SecondTurnEqualsAFreshSession) {
  auto m = tiny_model();
  ASSERT_NE(m, nullptr);
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.stop_at_eos = false;
  o.sampling = {.temperature = 0.9f, .top_k = 50, .repeat_penalty = 1.1f, .seed = 99};
  std::vector<int32_t> prompt = {3, 14, 15, 92, 65, 35};
  Session s(*m, 1024);
  auto first = s.generate(prompt, o);
  ASSERT_TRUE(first.is_ok());
  prompt.insert(prompt.end(), first->tokens.begin(), first->tokens.end());
  prompt.push_back(7);
  auto second = s.generate(prompt, o);
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(second->prefilled_tokens, 2);  // the last generated token and the new one
  Session fresh(*m, 1024);
  auto again = fresh.generate(prompt, o);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(second->tokens, again->tokens);
  EXPECT_EQ(second->tokens, host_path(*m, prompt, o));
}

// The default forward_sample on a batch of several sequences, each with its own parameters and
// history: forward() then ops::sample_with_uniform on each row.
TEST(Executor, ForwardSampleDefaultSamplesEachRowOnTheHost) {
  auto m = tiny_model();
  ASSERT_NE(m, nullptr);
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5}, {9, 8, 7}, {100, 200, 100, 200, 100, 300, 400}};
  const std::vector<SamplingParams> params = {
      {.temperature = 0.0f},
      {.temperature = 1.2f, .top_k = 8, .repeat_penalty = 1.5f},
      {.temperature = 0.7f, .top_p = 0.8f, .min_p = 0.05f, .repeat_penalty = 2.0f, .repeat_last_n = -1},
  };
  auto run = [&](bool sample, std::vector<float>& logits, std::vector<int32_t>& tokens,
                 const std::vector<SampleRequest>& rows) {
    auto kv = m->make_kv_cache(256);
    ASSERT_TRUE(kv.is_ok());
    std::vector<BlockTable> tables(prompts.size());
    ForwardBatch b;
    for (size_t s = 0; s < prompts.size(); ++s) {
      ASSERT_TRUE((*kv)->reserve(tables[s], static_cast<int>(prompts[s].size())).is_ok());
      b.add(prompts[s], 0, tables[s], (*kv)->block_size(), false);
    }
    if (!sample) {
      ASSERT_TRUE(m->forward(b, **kv, logits).is_ok());
      return;
    }
    ASSERT_TRUE(m->forward_sample(b, **kv, rows, tokens).is_ok());
    // A wrong number of rows is an error, not a crash.
    std::vector<int32_t> unused;
    EXPECT_FALSE(m->forward_sample(b, **kv, std::span(rows).first(1), unused).is_ok());
  };
  std::vector<float> logits;
  std::vector<int32_t> unused;
  run(false, logits, unused, {});
  const int vocab = m->config().vocab_size;
  ASSERT_EQ(logits.size(), prompts.size() * vocab);
  for (double u : {0.0, 0.3, 0.999}) {
    std::vector<SampleRequest> rows;
    for (size_t s = 0; s < prompts.size(); ++s) rows.push_back({params[s], prompts[s], u});
    std::vector<int32_t> tokens;
    std::vector<float> no_logits;
    run(true, no_logits, tokens, rows);
    for (size_t s = 0; s < prompts.size(); ++s) {
      const std::span<const float> row(logits.data() + s * vocab, vocab);
      EXPECT_EQ(tokens[s], ops::sample_with_uniform(params[s], row, prompts[s], u)) << "row " << s << " u " << u;
    }
  }
}

}  // namespace
}  // namespace nibble

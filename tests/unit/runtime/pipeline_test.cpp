// Pipelined decoding (Executor::submit / collect, docs/engine.md) on the CPU model, whose default
// runs each step inside submit(): steps whose tokens and penalty histories are prev_pick
// placeholders pick what the same steps pick through forward_sample with the ids known; misuse
// is an error that names it; Session::generate keeps the token of a step run after a stop.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "model/model.h"
#include "runtime/session.h"

namespace nibble {
namespace {

std::unique_ptr<Model> tiny_model() {
  auto m = Model::load(std::string(NIBBLE_TEST_DATA) + "/models/llama3_classic");
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  return m.is_ok() ? std::move(m.value()) : nullptr;
}

const std::vector<std::vector<int32_t>> kPrompts = {{1, 2, 3, 4, 5}, {9, 8, 7}, {100, 200, 100, 200, 100, 300, 400}};
const std::vector<SamplingParams> kParams = {
    {.temperature = 0.0f},
    {.temperature = 1.2f, .top_k = 8, .repeat_penalty = 1.5f, .repeat_last_n = 3},
    {.temperature = 0.7f, .top_p = 0.8f, .min_p = 0.05f, .repeat_penalty = 2.0f, .repeat_last_n = -1},
};
double draw(int step, int row) { return std::fmod(0.37 * (step + 1) + 0.21 * row, 1.0); }

// `steps` decode steps of the three prompts after a prefill, each row with its own parameters;
// pipelined: step s + 1 submitted (with placeholders) before step s is collected.
std::vector<std::vector<int32_t>> decode(const Executor& m, int steps, bool pipelined) {
  const int n = static_cast<int>(kPrompts.size());
  auto kv = m.make_kv_cache(512);
  EXPECT_TRUE(kv.is_ok());
  std::vector<BlockTable> tables(n);
  std::vector<std::vector<int32_t>> history = kPrompts, picks;
  std::vector<SampleRequest> rows(n);
  ForwardBatch prefill;
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE((*kv)->reserve(tables[i], static_cast<int>(kPrompts[i].size())).is_ok());
    prefill.add(kPrompts[i], 0, tables[i], (*kv)->block_size(), false);
    rows[i] = {kParams[i], history[i], draw(0, i)};
  }
  std::vector<int32_t> next;
  EXPECT_TRUE(m.forward_sample(prefill, **kv, rows, next).is_ok());
  picks.push_back(next);
  auto step_batch = [&](int step, bool placeholders) {
    ForwardBatch b;
    for (int i = 0; i < n; ++i) {
      const int pos = static_cast<int>(kPrompts[i].size()) + step;
      const int32_t token = placeholders ? prev_pick(i) : picks.back()[i];
      EXPECT_TRUE((*kv)->reserve(tables[i], pos + 1).is_ok());
      b.add(std::span(&token, 1), pos, tables[i], (*kv)->block_size(), false);
      history[i].push_back(token);
      rows[i] = {kParams[i], history[i], draw(step + 1, i)};
    }
    return b;
  };
  if (!pipelined) {
    for (int step = 0; step < steps; ++step) {
      EXPECT_TRUE(m.forward_sample(step_batch(step, false), **kv, rows, next).is_ok());
      picks.push_back(next);
    }
    return picks;
  }
  EXPECT_TRUE(m.submit(step_batch(0, false), **kv, rows).is_ok());
  for (int step = 0; step < steps; ++step) {
    if (step + 1 < steps) EXPECT_TRUE(m.submit(step_batch(step + 1, true), **kv, rows).is_ok());
    EXPECT_TRUE(m.collect(next).is_ok());
    picks.push_back(next);
    if (step + 1 < steps)
      for (int i = 0; i < n; ++i) history[i][kPrompts[i].size() + step + 1] = next[i];
  }
  EXPECT_EQ(m.in_flight(), 0);
  return picks;
}

TEST(Pipeline, PlaceholdersPickWhatKnownIdsPick) {
  auto m = tiny_model();
  ASSERT_NE(m, nullptr);
  const auto sync = decode(*m, 6, false), piped = decode(*m, 6, true);
  ASSERT_EQ(sync.size(), 7u);
  EXPECT_EQ(sync, piped);
}

TEST(Pipeline, MisuseIsAnErrorThatSaysWhat) {
  auto m = tiny_model();
  ASSERT_NE(m, nullptr);
  auto kv = m->make_kv_cache(64);
  ASSERT_TRUE(kv.is_ok());
  BlockTable table;
  ASSERT_TRUE((*kv)->reserve(table, 8).is_ok());
  auto one = [&](int32_t token, int pos) {
    ForwardBatch b;
    b.add(std::span(&token, 1), pos, table, (*kv)->block_size(), false);
    return b;
  };
  const SampleRequest greedy{{.temperature = 0.0f}, {}, 0.0};
  const std::span<const SampleRequest> row(&greedy, 1);
  std::vector<int32_t> out;

  Status s = m->collect(out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("no step is in flight"), std::string::npos) << s.message();
  s = m->submit(one(prev_pick(0), 0), **kv, row);
  EXPECT_NE(s.message().find("no step was submitted before it"), std::string::npos) << s.message();

  ASSERT_TRUE(m->submit(one(5, 0), **kv, row).is_ok());
  s = m->submit(one(prev_pick(1), 1), **kv, row);  // the step before has one row
  EXPECT_NE(s.message().find("prev_pick(1) in batch token 0, but the step before it has 1 rows"), std::string::npos)
      << s.message();
  s = m->submit(one(prev_pick(0), 1), **kv, row);  // the one before failed: nothing to name
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);

  // A placeholder in the penalty window is checked too.
  EXPECT_EQ(m->in_flight(), 1);
  ASSERT_TRUE(m->collect(out).is_ok());
  ASSERT_TRUE(m->submit(one(6, 1), **kv, row).is_ok());
  const std::vector<int32_t> hist = {5, 6, prev_pick(3)};
  const SampleRequest penalized{{.temperature = 0.0f, .repeat_penalty = 1.3f}, hist, 0.0};
  s = m->submit(one(prev_pick(0), 2), **kv, std::span(&penalized, 1));
  EXPECT_NE(s.message().find("prev_pick(3) in history of row 0"), std::string::npos) << s.message();

  // At most two in flight; what was submitted is still collected in order.
  ASSERT_TRUE(m->submit(one(7, 2), **kv, row).is_ok());
  s = m->submit(one(8, 3), **kv, row);
  EXPECT_NE(s.message().find("in flight already"), std::string::npos) << s.message();
  EXPECT_EQ(m->in_flight(), 2);
  EXPECT_TRUE(m->collect(out).is_ok());
  EXPECT_TRUE(m->collect(out).is_ok());
  EXPECT_EQ(m->collect(out).code(), StatusCode::kInvalidArgument);
}

// A callback that stops the generation after the step for its token was submitted: that
// token's key and value are in the cache, so the session holds it, and a next turn that
// continues the text equals a fresh session's.
TEST(Pipeline, SessionKeepsTheTokenOfAStepRunAfterAStop) {
  auto m = tiny_model();
  ASSERT_NE(m, nullptr);
  GenerateOptions o;
  o.max_new_tokens = 20;
  o.stop_at_eos = false;
  o.sampling = {.temperature = 0.9f, .top_k = 50, .repeat_penalty = 1.1f, .seed = 5};
  std::vector<int32_t> prompt = {3, 14, 15, 92, 65, 35};
  Session s(*m, 1024);
  int seen = 0;
  auto first = s.generate(prompt, o, [&](int32_t) { return ++seen < 5; });
  ASSERT_TRUE(first.is_ok()) << first.status().message();
  EXPECT_EQ(first->stop, StopReason::kCallback);
  ASSERT_EQ(first->tokens.size(), 5u);
  // Token 5 stopped it once step 4 (reading it) was under way: all five are cached.
  std::vector<int32_t> cached = prompt;
  cached.insert(cached.end(), first->tokens.begin(), first->tokens.end());
  EXPECT_EQ(s.cached_tokens(), cached);

  prompt = cached;
  prompt.push_back(7);
  auto second = s.generate(prompt, o);
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(second->prefilled_tokens, 1);  // only the new token
  Session fresh(*m, 1024);
  auto again = fresh.generate(prompt, o);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(second->tokens, again->tokens);
}

}  // namespace
}  // namespace nibble

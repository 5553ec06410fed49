// One conversation with a model: a KV cache that outlives each reply, so that the next turn
// only prefills what is new (the longest common prefix of the cached tokens and the new
// prompt is kept). Generation is one sequence at a time here; batching many requests is the
// scheduler's job.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/executor.h"
#include "runtime/sampler.h"

namespace nibble {

struct GenerateOptions {
  int max_new_tokens = 256;
  SamplingParams sampling;
  bool stop_at_eos = true;   // the model's eos ids end generation
  int prefill_chunk = 512;   // prompt tokens per forward call
};

enum class StopReason { kEos, kLength, kCallback, kContext };
std::string_view stop_reason_name(StopReason r);

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated, including the eos token that ended it
  StopReason stop = StopReason::kLength;
  int prompt_tokens = 0;
  int prefilled_tokens = 0;     // prompt tokens actually computed (the rest came from the cache)
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

class Session {
 public:
  // `context` caps prompt + generated tokens (default: the model's context length).
  explicit Session(const Executor& model, int context = 0);

  // Generates after `prompt`. `on_token` sees each new token and returns false to stop (stop
  // strings are matched by the caller on the decoded text). On an error (a failed forward call:
  // out of memory, a lost GPU) the Status comes back instead of a result; the tokens generated
  // before it have already gone to `on_token`, and cached_tokens() keeps the prompt and all of
  // them but the last (the one whose forward call failed).
  Result<GenerateResult> generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                  const std::function<bool(int32_t)>& on_token = {});

  const std::vector<int32_t>& cached_tokens() const { return tokens_; }
  int context() const { return context_; }

 private:
  // Runs `tokens` through in chunks and picks the next token from the last one's logits with
  // `request` (its history is set here: the cached tokens, these included).
  Status prefill(std::span<const int32_t> tokens, int chunk, SampleRequest request, int32_t& next);
  void truncate(int n_tokens);

  const Executor& model_;
  int context_;
  std::unique_ptr<KvCache> kv_;  // made by the first generate()
  BlockTable table_;
  std::vector<int32_t> tokens_;  // tokens whose K/V are in the cache, in order
};

}  // namespace nibble

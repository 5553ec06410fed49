#include "runtime/session.h"

#include <algorithm>
#include <chrono>
#include <optional>

namespace nibble {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

std::string_view stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kEos: return "eos";
    case StopReason::kLength: return "length";
    case StopReason::kCallback: return "stop";
    case StopReason::kContext: return "context";
  }
  return "?";
}

Session::Session(const Executor& model, int context)
    : model_(model), context_(context > 0 ? std::min(context, model.config().max_position_embeddings)
                                          : model.config().max_position_embeddings) {}

void Session::truncate(int n) {
  if (n >= static_cast<int>(tokens_.size())) return;
  const int bs = kv_->block_size();
  const size_t keep_blocks = (n + bs - 1) / bs;
  while (table_.blocks.size() > keep_blocks) {
    kv_->pool().release(table_.blocks.back());
    table_.blocks.pop_back();
  }
  table_.n_tokens = n;
  tokens_.resize(n);
}

Status Session::prefill(std::span<const int32_t> tokens, int chunk, SampleRequest request, int32_t& next) {
  for (size_t start = 0; start < tokens.size(); start += chunk) {
    const auto part = tokens.subspan(start, std::min<size_t>(chunk, tokens.size() - start));
    const bool last = start + part.size() == tokens.size();
    const int pos = table_.n_tokens;
    NB_TRY(kv_->reserve(table_, pos + static_cast<int>(part.size())));
    ForwardBatch batch;
    batch.add(part, pos, table_, kv_->block_size(), /*all_logits=*/false);
    // The history the pick sees includes this part, as the sampler saw it before.
    tokens_.insert(tokens_.end(), part.begin(), part.end());
    std::vector<int32_t> picked;
    Status s;
    if (last) {
      request.history = tokens_;
      s = model_.forward_sample(batch, *kv_, std::span<const SampleRequest>(&request, 1), picked);
    } else {
      // An earlier chunk's pick is thrown away: the greedy call brings back an id, not a logits row.
      s = model_.forward_greedy(batch, *kv_, picked);
    }
    if (!s) {
      tokens_.resize(tokens_.size() - part.size());
      return s;
    }
    table_.n_tokens += static_cast<int>(part.size());
    if (last) next = picked.at(0);
  }
  return Status::ok();
}

Result<GenerateResult> Session::generate(std::span<const int32_t> prompt, const GenerateOptions& o,
                                         const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) return Status::invalid("the prompt is empty");
  if (!kv_) {
    NB_ASSIGN_OR_RETURN(kv_, model_.make_kv_cache(context_));
  }
  if (static_cast<int>(prompt.size()) >= context_)
    return Status::invalid("the prompt is {} tokens, longer than the context of {} tokens", prompt.size(), context_);
  const int vocab = model_.config().vocab_size;
  for (int32_t t : prompt)
    if (t < 0 || t >= vocab) return Status::invalid("prompt token {} is outside the vocabulary [0, {})", t, vocab);

  // Keep the cached prefix the new prompt shares, less one token: its logits are needed.
  size_t common = 0;
  while (common < tokens_.size() && common < prompt.size() && tokens_[common] == prompt[common]) ++common;
  common = std::min(common, prompt.size() - 1);
  truncate(static_cast<int>(common));

  GenerateResult r;
  r.prompt_tokens = static_cast<int>(prompt.size());
  r.prefilled_tokens = static_cast<int>(prompt.size() - common);
  // One draw per generated token, taken before its forward call, in the order sample() took
  // them (the executor picks with it, on the device where it can).
  Sampler sampler(o.sampling);
  SampleRequest request{o.sampling, {}, 0.0};
  int32_t next = 0;
  auto t0 = Clock::now();
  request.u = sampler.draw();
  if (Status s = prefill(prompt.subspan(common), std::max(1, o.prefill_chunk), request, next); !s) {
    truncate(static_cast<int>(common));  // leave the session usable
    return s;
  }
  r.prefill_seconds = since(t0);

  const auto& eos = model_.config().eos_token_ids;
  const int n0 = table_.n_tokens;
  // Decoding, pipelined (docs/engine.md): step i reads token i at position n0 + i and picks token
  // i + 1. It is submitted while step i - 1 still runs, with token i as prev_pick(0), and token i
  // is checked when step i - 1 is collected: the device never waits for the host. A step
  // submitted for a token that then ends the generation has put that token's key and value in
  // the cache; the session keeps them.
  std::vector<int32_t> history(tokens_.begin(), tokens_.end());  // what the steps' penalty sees
  std::vector<double> draws;  // step i's uniform draw, taken once, in step order
  auto submit = [&](int i, int32_t token) -> Status {
    NB_TRY(kv_->reserve(table_, n0 + i + 1));
    ForwardBatch batch;
    batch.add(std::span(&token, 1), n0 + i, table_, kv_->block_size(), /*all_logits=*/false);
    history.resize(n0 + i);  // a placeholder left by a submit that failed goes
    history.push_back(token);
    while (static_cast<int>(draws.size()) <= i) draws.push_back(sampler.draw());
    request.history = history;
    request.u = draws[i];
    return model_.submit(batch, *kv_, std::span<const SampleRequest>(&request, 1));
  };
  // The step after the last one collected put its token in the cache: keep it if it succeeded.
  auto keep = [&](int32_t token) {
    if (std::vector<int32_t> unused; model_.collect(unused).is_ok()) {
      tokens_.push_back(token);
      ++table_.n_tokens;
    }
  };
  t0 = Clock::now();
  int32_t token = next;
  bool ahead = false;  // step i was submitted already
  for (int i = 0; i < o.max_new_tokens; ++i) {
    r.tokens.push_back(token);
    std::optional<StopReason> stop;  // whether token i ends it, checked in this order
    if (o.stop_at_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) stop = StopReason::kEos;
    else if (on_token && !on_token(token)) stop = StopReason::kCallback;
    else if (i + 1 == o.max_new_tokens) stop = StopReason::kLength;
    else if (n0 + i + 1 >= context_) stop = StopReason::kContext;
    if (stop) {
      r.stop = *stop;
      if (ahead) keep(token);
      break;
    }
    if (!ahead) NB_TRY(submit(i, token));
    // Step i + 1, before token i + 1 is known. Should it fail here, it is submitted again with
    // the token once known, and fails (or not) then, where the caller sees it.
    ahead = i + 2 < o.max_new_tokens && n0 + i + 2 < context_ && submit(i + 1, prev_pick(0)).is_ok();
    std::vector<int32_t> picked;
    NB_TRY(model_.collect(picked));  // a failure drops step i + 1 too
    tokens_.push_back(token);
    ++table_.n_tokens;
    token = picked.at(0);
    if (ahead) history[n0 + i + 1] = token;
  }
  r.decode_seconds = since(t0);
  return r;
}

}  // namespace nibble

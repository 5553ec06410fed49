// What runs forward passes of one model: the CPU Model (the oracle) or a GPU backend built from
// it (src/model/cuda). Sessions, benchmarks and the scheduler hold an Executor, so they do not
// know where the arithmetic happens.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/model_config.h"
#include "kv/kv_cache.h"
#include "model/batch.h"
#include "ops/cpu/sampling.h"

namespace nibble {

// How to pick the token of one logits row: the parameters, the sequence so far (prompt and
// generated, for the repetition penalty; only its last repeat_last_n ids matter) and the uniform
// number of the draw (Sampler::draw(), so that the caller's generator decides the sequence).
struct SampleRequest {
  SamplingParams params;
  std::span<const int32_t> history;
  double u = 0;  // in [0, 1); unused when !ops::sampling_uses_draw(params)
};

// A token id meaning "the pick of logits row `row` of the step submitted just before this one"
// (Executor::submit): negative, so never a real id.
constexpr int32_t prev_pick(int row) { return -1 - row; }
constexpr int prev_pick_row(int32_t id) { return -1 - id; }

class Executor {
 public:
  virtual ~Executor() = default;
  virtual const ModelConfig& config() const = 0;
  // "cpu", or the GPU's name.
  virtual std::string device_name() const = 0;
  // A cache sized for `n_tokens` positions in total across sequences, in this executor's memory.
  virtual Result<std::unique_ptr<KvCache>> make_kv_cache(int n_tokens, int block_size = 16) const = 0;
  // Runs the batch; logits: [batch.n_logit_rows(), vocab] fp32, rows in sequence order.
  // Advances nothing: the caller updates each BlockTable's n_tokens. `kv` must come from this
  // executor's make_kv_cache.
  virtual Status forward(const ForwardBatch& batch, KvCache& kv, std::vector<float>& logits) const = 0;
  // The greedy next token of every logits row (the argmax, lowest id on ties). A GPU backend
  // overrides it to pick on the device and bring back only the ids.
  virtual Status forward_greedy(const ForwardBatch& batch, KvCache& kv, std::vector<int32_t>& next) const {
    std::vector<float> logits;
    NB_TRY(forward(batch, kv, logits));
    const int vocab = config().vocab_size;
    next.resize(logits.size() / vocab);
    for (size_t r = 0; r < next.size(); ++r) {
      const float* row = logits.data() + r * vocab;
      next[r] = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
    }
    return Status::ok();
  }
  // tokens[r] = ops::sample_with_uniform(rows[r].params, logits row r, rows[r].history, rows[r].u)
  // for every logits row (rows.size() == batch.n_logit_rows()). This default samples on the
  // host from forward()'s logits, so the CPU Model is the oracle; a GPU backend overrides it to
  // pick on the device and bring back only the ids.
  virtual Status forward_sample(const ForwardBatch& batch, KvCache& kv, std::span<const SampleRequest> rows,
                                std::vector<int32_t>& tokens) const {
    if (static_cast<int>(rows.size()) != batch.n_logit_rows())
      return Status::invalid("forward_sample: {} sampling rows for {} logits rows", rows.size(), batch.n_logit_rows());
    std::vector<float> logits;
    NB_TRY(forward(batch, kv, logits));
    const size_t vocab = config().vocab_size;
    tokens.resize(rows.size());
    for (size_t r = 0; r < rows.size(); ++r)
      tokens[r] = ops::sample_with_uniform(rows[r].params, std::span<const float>(logits.data() + r * vocab, vocab),
                                           rows[r].history, rows[r].u);
    return Status::ok();
  }

  // Pipelined decoding (docs/engine.md): submit() starts a step as forward_sample would and
  // returns without waiting for its picks; collect() gives the picks of the oldest submitted step
  // not yet collected (an error when none is). At most kMaxInFlight steps are in flight. Token
  // ids in `batch` and in the rows' histories may be prev_pick(r), r below the row count of the
  // step submitted last (other calls in between do not matter), unless that step failed or was
  // refused (check_submit; a refusal for steps in flight leaves the chain as it was): they are
  // resolved where the step runs, so the host need not wait for them. A failed collect() drops
  // the steps submitted after it (their inputs rested on it). This default runs the step inside
  // submit() on forward_sample, resolving the placeholders on the host.
  static constexpr int kMaxInFlight = 2;
  virtual Status submit(const ForwardBatch& batch, KvCache& kv, std::span<const SampleRequest> rows) const;
  virtual Status collect(std::vector<int32_t>& tokens) const;
  virtual int in_flight() const { return static_cast<int>(done_.size()); }

 protected:
  // What every submit() refuses in the step itself (after which the chain ends, as after a failed
  // step), or ok: an empty batch, a row count other than the batch's logits rows, or a prev_pick
  // placeholder (in the batch, or in a row's penalty window) naming no row of the step before,
  // which had `prev_rows` rows (-1: no step before, or it failed).
  static Status check_submit(const ForwardBatch& batch, std::span<const SampleRequest> rows, int prev_rows);

 private:
  mutable std::deque<Result<std::vector<int32_t>>> done_;  // the default's steps, run at submit()
  mutable std::optional<std::vector<int32_t>> last_;       // the last submitted step's picks, if it succeeded
};

}  // namespace nibble

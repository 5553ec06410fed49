// Executor's default pipelined decoding: each step runs inside submit() (docs/engine.md).
#include "model/executor.h"

namespace nibble {

Status Executor::check_submit(const ForwardBatch& batch, std::span<const SampleRequest> rows, int prev_rows) {
  if (batch.n_tokens() == 0) return Status::invalid("submit: the batch is empty");
  if (static_cast<int>(rows.size()) != batch.n_logit_rows())
    return Status::invalid("submit: {} sampling rows for {} logits rows", rows.size(), batch.n_logit_rows());
  auto check = [&](int32_t id, const char* where, size_t at) -> Status {
    if (id >= 0) return Status::ok();
    if (prev_rows < 0)
      return Status::invalid("submit: prev_pick({}) in {} {}, but no step was submitted before it, or that step failed",
                             prev_pick_row(id), where, at);
    if (prev_pick_row(id) >= prev_rows)
      return Status::invalid("submit: prev_pick({}) in {} {}, but the step before it has {} rows",
                             prev_pick_row(id), where, at, prev_rows);
    return Status::ok();
  };
  for (size_t t = 0; t < batch.tokens.size(); ++t) NB_TRY(check(batch.tokens[t], "batch token", t));
  for (size_t r = 0; r < rows.size(); ++r)
    for (int32_t id : ops::penalized_ids(rows[r].params, rows[r].history)) NB_TRY(check(id, "history of row", r));
  return Status::ok();
}

Status Executor::submit(const ForwardBatch& batch, KvCache& kv, std::span<const SampleRequest> rows) const {
  if (static_cast<int>(done_.size()) >= kMaxInFlight)
    return Status::invalid("submit: {} steps are in flight already; collect one first", done_.size());
  const std::optional<std::vector<int32_t>> prev = std::move(last_);
  last_.reset();
  NB_TRY(check_submit(batch, rows, prev ? static_cast<int>(prev->size()) : -1));
  // Copies with the placeholders replaced by the picks they name (those checked above: the
  // batch's and the penalty windows'; one outside a window is never read).
  auto resolve = [&](std::vector<int32_t>& ids) {
    for (auto& t : ids)
      if (t < 0 && prev && prev_pick_row(t) < static_cast<int>(prev->size())) t = (*prev)[prev_pick_row(t)];
  };
  ForwardBatch b = batch;
  resolve(b.tokens);
  std::vector<std::vector<int32_t>> histories(rows.size());
  std::vector<SampleRequest> resolved(rows.begin(), rows.end());
  for (size_t r = 0; r < rows.size(); ++r) {
    histories[r].assign(rows[r].history.begin(), rows[r].history.end());
    resolve(histories[r]);
    resolved[r].history = histories[r];
  }
  std::vector<int32_t> out;
  NB_TRY(forward_sample(b, kv, resolved, out));
  last_ = out;
  done_.push_back(std::move(out));
  return Status::ok();
}

Status Executor::collect(std::vector<int32_t>& tokens) const {
  tokens.clear();
  if (done_.empty()) return Status::invalid("collect: no step is in flight");
  Result<std::vector<int32_t>> r = std::move(done_.front());
  done_.pop_front();
  if (!r) {
    done_.clear();  // built on this step's picks
    last_.reset();
    return r.status();
  }
  tokens = std::move(*r);
  return Status::ok();
}

}  // namespace nibble

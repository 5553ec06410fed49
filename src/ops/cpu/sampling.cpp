#include "ops/cpu/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

namespace nibble::ops {

namespace {

// The penalty divides positive logits and multiplies negative ones, so that either way the
// token becomes less likely (transformers' RepetitionPenaltyLogitsProcessor, llama.cpp's
// repeat penalty); each distinct token is penalised once.
void apply_penalty(std::vector<double>& l, const SamplingParams& p, std::span<const int32_t> history) {
  const std::span<const int32_t> ids = penalized_ids(p, history);
  std::unordered_set<int32_t> seen(ids.begin(), ids.end());
  for (int32_t t : seen) {
    if (t < 0 || static_cast<size_t>(t) >= l.size()) continue;
    l[t] = l[t] > 0 ? l[t] / p.repeat_penalty : l[t] * p.repeat_penalty;
  }
}

}  // namespace

std::span<const int32_t> penalized_ids(const SamplingParams& p, std::span<const int32_t> history) {
  if (p.repeat_penalty == 1.0f || p.repeat_last_n == 0) return {};
  if (p.repeat_last_n < 0 || history.size() <= static_cast<size_t>(p.repeat_last_n)) return history;
  return history.last(static_cast<size_t>(p.repeat_last_n));
}

std::vector<double> sampling_distribution(const SamplingParams& p, std::span<const float> logits,
                                          std::span<const int32_t> history) {
  const size_t n = logits.size();
  std::vector<double> l(logits.begin(), logits.end());
  apply_penalty(l, p, history);
  std::vector<double> prob(n, 0.0);
  if (p.temperature <= 0.0f) {
    prob[std::max_element(l.begin(), l.end()) - l.begin()] = 1.0;
    return prob;
  }
  for (auto& v : l) v /= p.temperature;

  // Candidates sorted by logit, highest first (stable: lower ids first on ties).
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return l[a] > l[b]; });
  size_t keep = n;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) {
    // Ties with the k-th logit stay, as in transformers (logits < k-th value are removed).
    const double kth = l[idx[p.top_k - 1]];
    keep = p.top_k;
    while (keep < n && l[idx[keep]] == kth) ++keep;
  }
  // Softmax over the survivors.
  const double mx = l[idx[0]];
  std::vector<double> e(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += e[i] = std::exp(l[idx[i]] - mx);
  for (auto& v : e) v /= sum;
  if (p.top_p < 1.0f) {
    // Smallest prefix whose mass reaches top_p; the token that crosses it stays.
    double cum = 0;
    size_t k = 0;
    while (k < keep) {
      cum += e[k++];
      if (cum >= p.top_p) break;
    }
    keep = std::max<size_t>(k, 1);
  }
  if (p.min_p > 0.0f) {
    // Against the top token's probability after the steps above (renormalised).
    double mass = 0;
    for (size_t i = 0; i < keep; ++i) mass += e[i];
    const double threshold = p.min_p * e[0] / mass;
    size_t k = 1;
    while (k < keep && e[k] / mass >= threshold) ++k;
    keep = k;
  }
  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += e[i];
  for (size_t i = 0; i < keep; ++i) prob[idx[i]] = e[i] / mass;
  return prob;
}

int32_t sample_with_uniform(const SamplingParams& p, std::span<const float> logits, std::span<const int32_t> history,
                            double u) {
  if (!sampling_uses_draw(p))
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const std::vector<double> prob = sampling_distribution(p, logits, history);
  double cum = 0;
  int32_t last = 0;
  for (size_t i = 0; i < prob.size(); ++i) {
    if (prob[i] == 0) continue;
    cum += prob[i];
    last = static_cast<int32_t>(i);
    if (u < cum) return last;
  }
  return last;  // rounding left u just above the total
}

}  // namespace nibble::ops

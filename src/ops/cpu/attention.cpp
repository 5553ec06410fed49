// Paged causal attention on the CPU: one query row at a time per (token, head), keys read
// through the sequence's block table. Scores in fp32, softmax with the max subtracted.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/ops.h"

namespace nibble::ops {

void kv_write(const float* k, const float* v, const int32_t* slots, int n_tokens,
              const KvLayout& layout, float* k_cache, float* v_cache) {
  const int64_t row = static_cast<int64_t>(layout.n_kv_heads) * layout.head_dim;
  for (int t = 0; t < n_tokens; ++t) {
    std::memcpy(k_cache + slots[t] * row, k + t * row, row * sizeof(float));
    std::memcpy(v_cache + slots[t] * row, v + t * row, row * sizeof(float));
  }
}

std::vector<AttnRow> attention_rows(std::span<const AttnSeq> seqs) {
  std::vector<AttnRow> rows;
  for (const auto& s : seqs)
    for (int i = 0; i < s.n_q; ++i) rows.push_back({&s, s.q_begin + i});
  return rows;
}

void paged_attention(const float* q, const int32_t* positions, std::span<const AttnSeq> seqs,
                     const float* k_cache, const float* v_cache, const KvLayout& layout,
                     const AttnParams& p, float* out) {
  const int hd = layout.head_dim;
  const int n_kv = layout.n_kv_heads;
  const int group = p.n_heads / n_kv;
  const int bs = layout.block_size;
  const int64_t token_stride = static_cast<int64_t>(n_kv) * hd;  // one cached position

  // Work items: (query row, head).
  const std::vector<AttnRow> items = attention_rows(seqs);
  const int64_t n_items = static_cast<int64_t>(items.size()) * p.n_heads;

#pragma omp parallel
  {
    std::vector<float> scores;
    std::vector<float> acc(hd);
#pragma omp for schedule(dynamic, 4)
    for (int64_t it = 0; it < n_items; ++it) {
      const AttnRow& item = items[it / p.n_heads];
      const int h = static_cast<int>(it % p.n_heads);
      const int kvh = h / group;
      const int pos = positions[item.t];
      const int first = p.window > 0 ? std::max(0, pos - p.window + 1) : 0;
      const int n_keys = pos - first + 1;
      const float* qv = q + (static_cast<int64_t>(item.t) * p.n_heads + h) * hd;
      scores.resize(n_keys);
      float max_s = -INFINITY;
      for (int j = 0; j < n_keys; ++j) {
        const int kp = first + j;
        const int64_t slot = static_cast<int64_t>(item.seq->block_table[kp / bs]) * bs + kp % bs;
        const float* kv = k_cache + slot * token_stride + static_cast<int64_t>(kvh) * hd;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int d = 0; d < hd; ++d) s += qv[d] * kv[d];
        s *= p.scale;
        if (p.softcap > 0) s = p.softcap * std::tanh(s / p.softcap);
        scores[j] = s;
        max_s = std::max(max_s, s);
      }
      float sum = 0;
      for (int j = 0; j < n_keys; ++j) {
        scores[j] = std::exp(scores[j] - max_s);
        sum += scores[j];
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int j = 0; j < n_keys; ++j) {
        const int kp = first + j;
        const int64_t slot = static_cast<int64_t>(item.seq->block_table[kp / bs]) * bs + kp % bs;
        const float* vv = v_cache + slot * token_stride + static_cast<int64_t>(kvh) * hd;
        const float w = scores[j];
#pragma omp simd
        for (int d = 0; d < hd; ++d) acc[d] += w * vv[d];
      }
      float* o = out + (static_cast<int64_t>(item.t) * p.n_heads + h) * hd;
      const float inv = 1.0f / sum;
      for (int d = 0; d < hd; ++d) o[d] = acc[d] * inv;
    }
  }
}

}  // namespace nibble::ops

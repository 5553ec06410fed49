#include "runtime/single_sequence.h"

#include <charconv>

namespace nibble {

Result<std::vector<float>> sequence_logits(const Executor& model, std::span<const int32_t> tokens,
                                           int chunk) {
  const int n = static_cast<int>(tokens.size());
  if (n == 0) return Status::invalid("no tokens given");
  if (n > model.config().max_position_embeddings)
    return Status::invalid("{} tokens exceed the model's context length of {}", n,
                           model.config().max_position_embeddings);
  if (chunk <= 0) chunk = n;
  NB_ASSIGN_OR_RETURN(auto kv, model.make_kv_cache(n));
  BlockTable table;
  std::vector<float> all, part;
  all.reserve(static_cast<size_t>(n) * model.config().vocab_size);
  for (int start = 0; start < n; start += chunk) {
    const int len = std::min(chunk, n - start);
    NB_TRY(kv->reserve(table, start + len));
    ForwardBatch batch;
    batch.add(tokens.subspan(start, len), start, table, kv->block_size(), /*all_logits=*/true);
    NB_TRY(model.forward(batch, *kv, part));
    table.n_tokens = start + len;
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

Result<std::vector<int32_t>> parse_token_list(const std::string& text) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',' || text[i] == '[' || text[i] == ']')) ++i;
    if (i >= text.size()) break;
    int32_t v = 0;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
    if (ec != std::errc() || v < 0)
      return Status::invalid("--tokens: '{}' is not a list of non-negative integers", text);
    out.push_back(v);
    i = p - text.data();
  }
  if (out.empty()) return Status::invalid("--tokens: no token ids in '{}'", text);
  return out;
}

}  // namespace nibble

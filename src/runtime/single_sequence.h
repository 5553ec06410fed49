// Running one sequence through a model outside the scheduler: for `nibble logits`, the
// goldens tests and benchmarks.
#pragma once

#include <span>
#include <vector>

#include "model/executor.h"

namespace nibble {

// Logits for every position of `tokens`: [tokens.size(), vocab]. The prompt goes through in
// chunks of `chunk` tokens (0 = all at once), each chunk attending to the cached earlier ones.
Result<std::vector<float>> sequence_logits(const Executor& model, std::span<const int32_t> tokens,
                                           int chunk = 0);

// Parses "1,2,3" (spaces allowed) into token ids.
Result<std::vector<int32_t>> parse_token_list(const std::string& text);

}  // namespace nibble

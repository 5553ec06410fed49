// Token selection on the GPU over fp32 logits [rows, vocab]: greedy argmax, and the CPU sampler's
// whole pipeline (src/ops/cpu/sampling.cpp: repetition penalty, temperature, top-k, top-p, min-p,
// then an inverse-CDF draw) with the uniform number supplied per row by the host.
//
// The contract with the CPU sampler: for the same logits, history and parameters, and u the
// double that Sampler::sample would draw (std::uniform_real_distribution<double>(0, 1) on its
// generator), sample_rows picks the same token: the first token id i, in id order, whose
// cumulative probability over the kept tokens exceeds u (the last kept token if rounding leaves u
// above the total). Sums run in double on both sides, in different orders, so the two agree
// except when u, or a top-p cut, falls within ~1e-15 of a boundary; the order of tokens is
// decided on float keys, exact for every token the penalty did not touch.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "ops/cuda/device.h"

namespace nibble::cuda {

// Per-row sampling parameters (a device array of these), the fields of nibble::SamplingParams
// less the seed.
struct SampleRowParams {
  float temperature = 1.0f;     // <= 0: greedy (argmax after the penalty)
  int32_t top_k = 0;            // 0 = off
  float top_p = 1.0f;           // 1 = off
  float min_p = 0.0f;           // 0 = off
  float repeat_penalty = 1.0f;  // 1 = off
  int32_t repeat_last_n = 64;   // the last n history ids of the row are penalized; -1 = all of them
};

// out[r] = argmax_j logits[r, j], lowest j on ties (std::max_element).  logits: [rows, vocab].
Status argmax_rows(const float* logits, int rows, int vocab, int32_t* out, Stream& s);

// out[r] = the token the CPU sampler would pick for row r with uniform u[r] (see above).
//   logits: [rows, vocab] fp32 (not modified); params: [rows];
//   history: the rows' previous token ids back to back, history_offsets: [rows + 1] (row r's ids are
//   history[history_offsets[r] .. history_offsets[r + 1])); both may be null when no row has a
//   penalty; u: [rows] in [0, 1); out: [rows] int32. All device pointers. vocab <= 1,048,576.
//   blocks_per_row: 0 = chosen from the rows and the device (a cluster of 16, 8 or 2 blocks a row on
//   sm_90 while rows leave SMs idle and the device can run it, else 1); 1, 2, 8 or 16 forces it
//   (tests, A/B; unsupported where the device cannot run such a cluster).
Status sample_rows(const float* logits, int rows, int vocab, const SampleRowParams* params, const int32_t* history,
                   const int32_t* history_offsets, const double* u, int32_t* out, Stream& s, int blocks_per_row = 0);

}  // namespace nibble::cuda

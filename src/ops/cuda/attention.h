// Attention over the paged KV cache for chunks of many query rows (prefill, chunked prefill,
// speculative verification). Decode (one query row per sequence) stays paged_decode_attention
// in elementwise.h. Cache layout as docs/engine.md: k, v: [n_blocks, block_size, n_kv_heads, head_dim].
#pragma once

#include <cstdint>

#include "core/status.h"
#include "ops/cuda/device.h"

namespace nibble::cuda {

// One sequence's part of the batch (a device array of these is passed to the kernel).
struct PrefillSeq {
  int32_t q_begin = 0;    // first query row of this sequence in q / out / positions
  int32_t n_q = 0;        // its query rows (0 is allowed: nothing to do)
  int32_t table_row = 0;  // its row in block_tables
};

struct PrefillAttnParams {
  int n_heads = 0, n_kv_heads = 0;  // n_heads / n_kv_heads query heads share a kv head (GQA)
  int head_dim = 0;                 // a multiple of 8, at most 256
  int block_size = 16;              // cache positions per block
  int max_blocks = 0;               // row stride of block_tables
  float scale = 1.0f;               // applied to q.k
  float softcap = 0.0f;             // 0 = none; else s = softcap * tanh(s / softcap) after the scale
  int window = 0;                   // 0 = full causal; else keys (pos - window, pos]
};

// Causal attention of every query row t (at positions[t]) of each sequence over that sequence's
// cached keys [first, positions[t]], first = max(0, pos - window + 1) with a window, read through
// block_tables[seq.table_row * max_blocks + j]. The keys/values of the chunk itself must already
// be in the cache (kv_write first). FlashAttention-2 style: a block takes 128 (64 for head_dim >
// 128) (query row, head) pairs of one sequence and one kv head's group, streams 32 or 64 keys at
// a time through shared memory, QK^T and PV on the tensor cores (bf16, fp32 accumulate), online
// softmax in fp32. Any positions work (the mask is per row); ops::paged_attention is the twin.
//   q, out: [n_tokens, n_heads, head_dim] bf16; positions: [n_tokens]; seqs: [n_seqs] (device);
//   max_q: the largest n_q over seqs (sizes the grid); k_cache, v_cache: bf16.
Status paged_prefill_attention(const uint16_t* q, const int32_t* positions, const PrefillSeq* seqs, int n_seqs,
                               int max_q, const int32_t* block_tables, const uint16_t* k_cache,
                               const uint16_t* v_cache, const PrefillAttnParams& p, uint16_t* out, Stream& s);

}  // namespace nibble::cuda

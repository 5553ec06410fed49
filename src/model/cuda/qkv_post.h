#pragma once

#include <cstdint>

#include "core/status.h"
#include "ops/cuda/device.h"

namespace nibble::cuda {

// Everything between the fused QKV product and attention, in one pass per token: + bias,
// q/k RMSNorm per head, rotate-half RoPE on q and k, q to `q_out`, k and v into the paged cache
// (bf16) at each token's slot. Each step rounds to bf16 where the separate ops would (so it
// equals add_bias, rmsnorm, rope and kv_write run one after another).
struct QkvPostParams {
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  const float* bias = nullptr;      // [q_dim + 2 kv_dim] or null
  const uint16_t* q_norm = nullptr;  // [head_dim] bf16 or null (then k_norm is null too)
  const uint16_t* k_norm = nullptr;
  float eps = 1e-6f;
  bool norm_adds_one = false;
  const float* inv_freq = nullptr;  // [head_dim / 2]
};
Status qkv_post(const uint16_t* qkv, int T, const int32_t* positions, const int32_t* slots, const QkvPostParams& p,
                uint16_t* q_out, uint16_t* k_cache, uint16_t* v_cache, Stream& s);

}  // namespace nibble::cuda

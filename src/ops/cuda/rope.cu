// Rotate-half RoPE in place: one thread per (token, head, pair); angles in fp32 as the CPU twin
// and transformers compute them (inv_freq * pos, then precise sin/cos).
#include "ops/cuda/common.cuh"
#include "ops/cuda/elementwise.h"

namespace nibble::cuda {
namespace {

__global__ void rope_kernel(uint16_t* x, const int32_t* positions, int n_heads, int head_dim,
                            const float* inv_freq, int64_t total) {
  const int half = head_dim / 2;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int d = static_cast<int>(i % half);
  const int64_t th = i / half;  // token * n_heads + head
  const int64_t tok = th / n_heads;
  const float a = inv_freq[d] * static_cast<float>(positions[tok]);
  float sn, cs;
  sincosf(a, &sn, &cs);
  uint16_t* v = x + th * head_dim;
  const float x0 = bf16_bits_to_f32(v[d]), x1 = bf16_bits_to_f32(v[d + half]);
  v[d] = __bfloat16_as_ushort(__float2bfloat16_rn(x0 * cs - x1 * sn));
  v[d + half] = __bfloat16_as_ushort(__float2bfloat16_rn(x1 * cs + x0 * sn));
}

}  // namespace

Status rope(uint16_t* x, const int32_t* positions, int n_tokens, int n_heads, int head_dim,
            const float* inv_freq, Stream& s) {
  if (head_dim <= 0 || head_dim % 2 != 0) return Status::unsupported("rope: head_dim must be even, got {}", head_dim);
  const int64_t total = static_cast<int64_t>(n_tokens) * n_heads * (head_dim / 2);
  return launch("rope", rope_kernel, dim3(ceil_div(total, 256)), dim3(256), 0, s.get(), x, positions, n_heads,
                head_dim, inv_freq, total);
}

}  // namespace nibble::cuda

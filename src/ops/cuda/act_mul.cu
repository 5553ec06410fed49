// Gated activations: out = silu(gate) * up or gelu_tanh(gate) * up, elementwise, 8 per thread.
#include "ops/cuda/common.cuh"
#include "ops/cuda/elementwise.h"

namespace nibble::cuda {
namespace {

template <bool kGelu>
__global__ void act_mul_kernel(const uint16_t* gate, const uint16_t* up, int64_t n, uint16_t* out) {
  const int64_t i0 = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 8;
  if (i0 >= n) return;
  const int64_t i1 = i0 + 8 < n ? i0 + 8 : n;
  for (int64_t i = i0; i < i1; ++i)
    out[i] = __bfloat16_as_ushort(__float2bfloat16_rn(gated_act(bf16_bits_to_f32(gate[i]), kGelu) * bf16_bits_to_f32(up[i])));
}

template <bool kGelu>
Status act_mul(const char* name, const uint16_t* gate, const uint16_t* up, int64_t n, uint16_t* out, Stream& s) {
  return launch(name, act_mul_kernel<kGelu>, dim3(ceil_div(n, 8 * 256)), dim3(256), 0, s.get(), gate, up, n, out);
}

}  // namespace

Status silu_mul(const uint16_t* gate, const uint16_t* up, int64_t n, uint16_t* out, Stream& s) {
  return act_mul<false>("silu_mul", gate, up, n, out, s);
}
Status gelu_tanh_mul(const uint16_t* gate, const uint16_t* up, int64_t n, uint16_t* out, Stream& s) {
  return act_mul<true>("gelu_tanh_mul", gate, up, n, out, s);
}

}  // namespace nibble::cuda

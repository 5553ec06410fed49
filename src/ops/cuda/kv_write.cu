// Writes new K/V rows into the paged cache at their slots (fp32 or bf16 cache).
#include "ops/cuda/common.cuh"
#include "ops/cuda/elementwise.h"

namespace nibble::cuda {
namespace {

template <typename T>
__device__ T from_bf16(uint16_t b);
template <>
__device__ float from_bf16<float>(uint16_t b) { return bf16_bits_to_f32(b); }
template <>
__device__ uint16_t from_bf16<uint16_t>(uint16_t b) { return b; }

template <typename T>
__global__ void kv_write_kernel(const uint16_t* k, const uint16_t* v, const int32_t* slots, int row, T* kc, T* vc) {
  const int t = blockIdx.x;
  const size_t dst = static_cast<size_t>(slots[t]) * row, src = static_cast<size_t>(t) * row;
  for (int i = threadIdx.x; i < row; i += blockDim.x) {
    kc[dst + i] = from_bf16<T>(k[src + i]);
    vc[dst + i] = from_bf16<T>(v[src + i]);
  }
}

}  // namespace

Status kv_write(const uint16_t* k, const uint16_t* v, const int32_t* slots, int n_tokens, int n_kv_heads,
                int head_dim, CacheType type, void* k_cache, void* v_cache, Stream& s) {
  const int row = n_kv_heads * head_dim;
  if (type == CacheType::kF32)
    return launch("kv_write", kv_write_kernel<float>, dim3(n_tokens), dim3(128), 0, s.get(), k, v, slots, row,
                  static_cast<float*>(k_cache), static_cast<float*>(v_cache));
  return launch("kv_write", kv_write_kernel<uint16_t>, dim3(n_tokens), dim3(128), 0, s.get(), k, v, slots, row,
                static_cast<uint16_t*>(k_cache), static_cast<uint16_t*>(v_cache));
}

}  // namespace nibble::cuda

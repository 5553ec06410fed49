// rmsnorm with the residual add fused: one block per row, the row kept in registers/fp32.
#include "ops/cuda/common.cuh"
#include "ops/cuda/elementwise.h"

namespace nibble::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kMaxPerThread = 16;  // dim <= 8192

__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const uint16_t* x, const uint16_t* residual,
                                                           uint16_t* residual_out, const uint16_t* w, int dim,
                                                           float eps, bool add_one, uint16_t* out) {
  const size_t row = static_cast<size_t>(blockIdx.x) * dim;
  float h[kMaxPerThread];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxPerThread; ++j) {
    const int i = threadIdx.x + j * kThreads;
    h[j] = 0.0f;
    if (i < dim) {
      float v = bf16_bits_to_f32(x[row + i]);
      if (residual) v += bf16_bits_to_f32(residual[row + i]);
      h[j] = v;
      ss = fmaf(v, v, ss);
    }
  }
  __shared__ float part[kThreads / 32];
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int i = 0; i < kThreads / 32; ++i) total += part[i];
  const float inv = rsqrtf(total / dim + eps);
#pragma unroll
  for (int j = 0; j < kMaxPerThread; ++j) {
    const int i = threadIdx.x + j * kThreads;
    if (i < dim) {
      // residual_out may alias x or residual: every read of this element happened above.
      if (residual_out) residual_out[row + i] = __bfloat16_as_ushort(__float2bfloat16_rn(h[j]));
      float wv = bf16_bits_to_f32(w[i]);
      if (add_one) wv += 1.0f;
      out[row + i] = __bfloat16_as_ushort(__float2bfloat16_rn(wv * (h[j] * inv)));
    }
  }
}

}  // namespace

Status rmsnorm(const uint16_t* x, const uint16_t* residual, uint16_t* residual_out, const uint16_t* w, int n,
               int dim, float eps, bool add_one, uint16_t* out, Stream& s) {
  if (dim <= 0 || dim > kThreads * kMaxPerThread)
    return Status::unsupported("rmsnorm: dim must be 1..{}, got {}", kThreads * kMaxPerThread, dim);
  return launch("rmsnorm", rmsnorm_kernel, dim3(n), dim3(kThreads), 0, s.get(), x, residual, residual_out, w,
                dim, eps, add_one, out);
}

}  // namespace nibble::cuda

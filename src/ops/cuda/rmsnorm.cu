// rmsnorm with the residual add fused: one block per row, the row kept in registers/fp32.
#include "ops/cuda/common.cuh"
#include "ops/cuda/elementwise.h"

namespace nibble::cuda {
namespace {

// Sum of `v` over the block's kBlock threads, in a fixed order; every thread gets it.
template <int kBlock>
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float part[kBlock / 32];
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int i = 0; i < kBlock / 32; ++i) total += part[i];
  return total;
}

constexpr int kThreads = 512;
constexpr int kMaxPerThread = 16;  // dim <= 8192

__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const uint16_t* x, const uint16_t* residual,
                                                           uint16_t* residual_out, const uint16_t* w, int dim,
                                                           float eps, bool add_one, uint16_t* out) {
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
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
  const float total = block_sum<kThreads>(ss);
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

// The vector path (dim a multiple of 8, rows 16-byte aligned): 8 bf16 per 16-byte load, every
// load of the row issued before the first use, the weight read before waiting on the previous
// kernel (PDL): at one token a row is 8 KB, so this kernel is all latency, and the scalar loop
// above paid ~a dozen dependent L2 round trips.
constexpr int kVecThreads = 512, kVecPerThread = 2;  // dim <= 8192

__device__ __forceinline__ void unpack8(const uint4& u, float (&f)[8]) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
  }
}

__global__ void __launch_bounds__(kVecThreads) rmsnorm_vec_kernel(const uint4* x, const uint4* residual,
                                                                  uint4* residual_out, const uint4* w, int dim8,
                                                                  float eps, bool add_one, uint4* out) {
  uint4 wv[kVecPerThread];
#pragma unroll
  for (int j = 0; j < kVecPerThread; ++j) {
    const int i = threadIdx.x + j * kVecThreads;
    if (i < dim8) wv[j] = w[i];  // constant: read before waiting on the previous kernel
  }
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  const size_t row = static_cast<size_t>(blockIdx.x) * dim8;
  uint4 xv[kVecPerThread], rv[kVecPerThread];
#pragma unroll
  for (int j = 0; j < kVecPerThread; ++j) {
    const int i = threadIdx.x + j * kVecThreads;
    if (i < dim8) {
      xv[j] = x[row + i];
      if (residual) rv[j] = residual[row + i];
    }
  }
  float h[kVecPerThread][8];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kVecPerThread; ++j) {
    const int i = threadIdx.x + j * kVecThreads;
    if (i < dim8) {
      unpack8(xv[j], h[j]);
      if (residual) {
        float r[8];
        unpack8(rv[j], r);
#pragma unroll
        for (int e = 0; e < 8; ++e) h[j][e] += r[e];
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) ss = fmaf(h[j][e], h[j][e], ss);
    }
  }
  const float total = block_sum<kVecThreads>(ss);
  const float inv = rsqrtf(total / (dim8 * 8) + eps);
#pragma unroll
  for (int j = 0; j < kVecPerThread; ++j) {
    const int i = threadIdx.x + j * kVecThreads;
    if (i < dim8) {
      float wf[8];
      unpack8(wv[j], wf);
      uint32_t o[4], r[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float w0 = add_one ? wf[2 * e] + 1.0f : wf[2 * e], w1 = add_one ? wf[2 * e + 1] + 1.0f : wf[2 * e + 1];
        o[e] = pack_bf16x2(w0 * (h[j][2 * e] * inv), w1 * (h[j][2 * e + 1] * inv));
        r[e] = pack_bf16x2(h[j][2 * e], h[j][2 * e + 1]);
      }
      // residual_out may alias x or residual: every read of this row happened above.
      if (residual_out) residual_out[row + i] = make_uint4(r[0], r[1], r[2], r[3]);
      out[row + i] = make_uint4(o[0], o[1], o[2], o[3]);
    }
  }
}

}  // namespace

Status rmsnorm(const uint16_t* x, const uint16_t* residual, uint16_t* residual_out, const uint16_t* w, int n,
               int dim, float eps, bool add_one, uint16_t* out, Stream& s) {
  if (dim <= 0 || dim > kThreads * kMaxPerThread)
    return Status::unsupported("rmsnorm: dim must be 1..{}, got {}", kThreads * kMaxPerThread, dim);
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (dim % 8 == 0 && dim <= kVecThreads * kVecPerThread * 8 && aligned(x) && aligned(residual) &&
      aligned(residual_out) && aligned(w) && aligned(out))
    return launch_pdl("rmsnorm", rmsnorm_vec_kernel, dim3(n), dim3(kVecThreads), 0, s,
                      reinterpret_cast<const uint4*>(x), reinterpret_cast<const uint4*>(residual),
                      reinterpret_cast<uint4*>(residual_out), reinterpret_cast<const uint4*>(w), dim / 8, eps,
                      add_one, reinterpret_cast<uint4*>(out));
  return launch_pdl("rmsnorm", rmsnorm_kernel, dim3(n), dim3(kThreads), 0, s, x, residual, residual_out, w,
                dim, eps, add_one, out);
}

}  // namespace nibble::cuda

// How many bytes must be in flight per SM to read HBM at the copy rate? The GEMV's question,
// without its arithmetic: every warp streams a contiguous run of 512-byte units (16 bytes a
// lane, the GEMV's weight load with its evict-first L2 hint), D units ahead in registers, with
// `warps` warps resident per SM. Prints GB/s per (warps per SM, D), over a buffer 8x the L2.
// Second table: the GEMV's pieces added one at a time (staged_kernel).
// Built and run by hand on the GPU machine:  nvcc -O3 -arch=sm_90a -Ibench bench/stream_probe.cu -o /tmp/probe
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "probe_util.cuh"

template <int D>
__global__ void stream_kernel(const uint4* __restrict__ base, long units_per_warp, unsigned* out) {
  const uint64_t pol = probe_evict_first();
  const long warp = (static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  const uint4* p = base + warp * units_per_warp * 32 + lane;
  uint4 ring[D];
#pragma unroll
  for (int i = 0; i < D; ++i) ring[i] = ld_stream(p + i * 32, pol);
  unsigned acc = 0;
  for (long u = 0; u < units_per_warp; u += D) {
#pragma unroll
    for (int i = 0; i < D; ++i) {
      acc ^= ring[i].x ^ ring[i].y ^ ring[i].z ^ ring[i].w;
      if (u + D + i < units_per_warp) ring[i] = ld_stream(p + (u + D + i) * 32, pol);
    }
  }
  if (acc == 0x12345678u) out[0] = acc;  // keeps the loads
}

// The GEMV's pieces added to the stream one at a time (STAGE), same loads, 8-warp blocks with the
// GEMV's 32 KB per-lane decode table: 1 = + the table lookups of every code byte (PRMT, address,
// LDS: what NF4 does), 2 = + four m16n8k16 MMAs a unit and the fp32 scale step, 3 = + the
// activation fragments loaded per unit (two 16-byte loads a lane, through L1), 4 = + a scale word
// a lane every 4 units (streamed, evict-first) shared by shuffles. Where the rate falls is what
// holds the real kernel.
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <int D, int STAGE>
__global__ void __launch_bounds__(256, 4) staged_kernel(const uint4* __restrict__ base, long units_per_warp,
                                                        const uint4* __restrict__ xs, const uint16_t* __restrict__ scales,
                                                        unsigned* out) {
  __shared__ __align__(16) uint32_t lut[256 * 32];
  const uint64_t pol = probe_evict_first();
  for (int i = threadIdx.x; i < 256 * 32; i += blockDim.x) lut[i] = 0x3F803F80u ^ (i >> 5);
  __syncthreads();
  const long warp = (static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  const uint4* p = base + warp * units_per_warp * 32 + lane;
  const uint16_t* sp = scales + warp * units_per_warp + lane;  // one 2-byte word a lane per 4 units
  uint32_t lut_lane;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(lut_lane) : "l"(lut));
  lut_lane += lane * 4;
  uint4 ring[D];
#pragma unroll
  for (int i = 0; i < D; ++i) ring[i] = ld_stream(p + i * 32, pol);
  unsigned acc = 0;
  float facc[4] = {0, 0, 0, 0};
  uint32_t sc = 0x3F800000u;
  for (long u = 0; u < units_per_warp; u += D) {
#pragma unroll
    for (int i = 0; i < D; ++i) {
      const uint4 w = ring[i];
      if (u + D + i < units_per_warp) ring[i] = ld_stream(p + (u + D + i) * 32, pol);
      if constexpr (STAGE == 0) {
        acc ^= w.x ^ w.y ^ w.z ^ w.w;
      } else {
        if constexpr (STAGE >= 4) {
          if (((u + i) & 3) == 0) {
            uint16_t v;
            asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.u16 %0, [%1], %2;" : "=h"(v) : "l"(sp + (u + i)), "l"(pol));
            sc = 0x3F800000u | v;
          }
        }
        uint32_t b0 = 0x3F803F80u, b1 = 0x3F803F80u, b2 = 0x3F803F80u, b3 = 0x3F803F80u;
        if constexpr (STAGE >= 3) {
          const uint4 x0 = __ldg(xs + (((u + i) * 8 + (lane & 3)) & 1023));
          const uint4 x1 = __ldg(xs + (((u + i) * 8 + 4 + (lane & 3)) & 1023));
          b0 = x0.x ^ x0.y; b1 = x0.z ^ x0.w; b2 = x1.x ^ x1.y; b3 = x1.z ^ x1.w;
        }
        const uint32_t wd[4] = {w.x, w.y, w.z, w.w};
        float d[4] = {0, 0, 0, 0};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          uint32_t a[4];
#pragma unroll
          for (int r = 0; r < 4; ++r) {
            uint32_t v;
            asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(lut_lane + (__byte_perm(wd[k], 0, 0x4440 | r) << 7)));
            a[r] = v;
          }
          if constexpr (STAGE == 1) acc ^= a[0] ^ a[1] ^ a[2] ^ a[3];
          else mma16816(d, a, (k & 1) ? b2 : b0, (k & 1) ? b3 : b1);
        }
        if constexpr (STAGE >= 2) {
          const float s0 = __uint_as_float(STAGE >= 4 ? __shfl_sync(0xffffffffu, sc, (lane & ~3) | ((u + i) & 3)) : sc);
#pragma unroll
          for (int c = 0; c < 4; ++c) facc[c] = fmaf(d[c], s0, facc[c]);
        }
      }
    }
  }
  if (acc == 0x12345678u || facc[0] + facc[1] + facc[2] + facc[3] == 1.2345f) out[0] = acc;
}

// Median of 7 timed launches after one warm-up, as GB/s of `bytes` moved.
template <class Launch>
double median_rate(Launch launch, double bytes) {
  return bytes / (median_batch_ms(0, launch, 7) * 1e-3) / 1e9;
}

template <int D, int STAGE>
double run_staged(const uint4* buf, size_t bytes, int sms, const uint4* xs, const uint16_t* scales, unsigned* out) {
  const int warps_per_sm = 32, grid = sms * warps_per_sm / 8;
  const long n_warps = static_cast<long>(sms) * warps_per_sm;
  const long units_per_warp = static_cast<long>(bytes / 512 / n_warps) / D * D;
  return median_rate([&] { staged_kernel<D, STAGE><<<grid, 256>>>(buf, units_per_warp, xs, scales, out); },
                     static_cast<double>(units_per_warp) * n_warps * 512);
}

template <int D>
double run(const uint4* buf, size_t bytes, int sms, int warps_per_sm, unsigned* out) {
  const long n_warps = static_cast<long>(sms) * warps_per_sm;
  const long units_per_warp = static_cast<long>(bytes / 512 / n_warps) / D * D;
  const int grid = sms * (warps_per_sm / 8);
  return median_rate([&] { stream_kernel<D><<<grid, 256>>>(buf, units_per_warp, out); },
                     static_cast<double>(units_per_warp) * n_warps * 512);
}

int main() {
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  const size_t bytes = static_cast<size_t>(prop.l2CacheSize) * 8;
  uint4* buf;
  unsigned* out;
  cudaMalloc(&buf, bytes);
  cudaMalloc(&out, 4);
  cudaMemset(buf, 1, bytes);
  // The copy rate the GEMV floor uses (bytes read + written).
  uint4* dst;
  cudaMalloc(&dst, bytes / 2);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaMemcpy(dst, buf, bytes / 2, cudaMemcpyDeviceToDevice);
  cudaEventRecord(a);
  for (int i = 0; i < 5; ++i) cudaMemcpy(dst, buf, bytes / 2, cudaMemcpyDeviceToDevice);
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float t;
  cudaEventElapsedTime(&t, a, b);
  std::printf("%s: copy %.0f GB/s (read + write)\n", prop.name, 5.0 * bytes / (t * 1e-3) / 1e9);
  std::printf("warps/SM  D  KB_in_flight/SM  GB/s\n");
  for (int w : {16, 24, 32, 48, 64}) {
    const double r[] = {run<1>(buf, bytes, prop.multiProcessorCount, w, out), run<2>(buf, bytes, prop.multiProcessorCount, w, out),
                        run<3>(buf, bytes, prop.multiProcessorCount, w, out), run<4>(buf, bytes, prop.multiProcessorCount, w, out),
                        run<6>(buf, bytes, prop.multiProcessorCount, w, out), run<8>(buf, bytes, prop.multiProcessorCount, w, out)};
    const int ds[] = {1, 2, 3, 4, 6, 8};
    for (int i = 0; i < 6; ++i) std::printf("%8d %2d %10.0f %10.0f\n", w, ds[i], w * ds[i] * 0.5, r[i]);
  }
  // The GEMV's pieces, one at a time (32 warps per SM, as the GEMV runs).
  uint4* xs;
  uint16_t* scales;
  cudaMalloc(&xs, 1024 * sizeof(uint4));
  cudaMemset(xs, 0, 1024 * sizeof(uint4));
  cudaMalloc(&scales, bytes / 512 * 2 + 4096);
  cudaMemset(scales, 0, bytes / 512 * 2 + 4096);
  const int sms = prop.multiProcessorCount;
  std::printf("\nstage (32 warps/SM)                     D=2 GB/s  D=3 GB/s\n");
  const char* names[] = {"0 loads only", "1 + table lookups", "2 + MMAs and scale FMAs", "3 + activation loads",
                         "4 + scale loads and shuffles"};
  const double r2[] = {run_staged<2, 0>(buf, bytes, sms, xs, scales, out), run_staged<2, 1>(buf, bytes, sms, xs, scales, out),
                       run_staged<2, 2>(buf, bytes, sms, xs, scales, out), run_staged<2, 3>(buf, bytes, sms, xs, scales, out),
                       run_staged<2, 4>(buf, bytes, sms, xs, scales, out)};
  const double r3[] = {run_staged<3, 0>(buf, bytes, sms, xs, scales, out), run_staged<3, 1>(buf, bytes, sms, xs, scales, out),
                       run_staged<3, 2>(buf, bytes, sms, xs, scales, out), run_staged<3, 3>(buf, bytes, sms, xs, scales, out),
                       run_staged<3, 4>(buf, bytes, sms, xs, scales, out)};
  for (int i = 0; i < 5; ++i) std::printf("%-38s %9.0f %9.0f\n", names[i], r2[i], r3[i]);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) std::printf("error: %s\n", cudaGetErrorString(e));
  return 0;
}

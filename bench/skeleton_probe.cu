// What can a kernel that only reads a layer's 4-bit weights reach at the GEMV's own sizes, timed
// the way the GEMV benchmark times it (back-to-back launches over rotating weight copies, >= 512
// MB a rotation)? stream_probe.cu answers for one 8x-L2 buffer, where launch, ramp and tail are
// nothing; the 15 layer shapes are 11-235 MB, where they are not. Each variant is a grid
// skeleton with no arithmetic: how many warps per SM, how many 512-byte units a warp keeps in
// flight (D), one persistent wave of contiguous runs or many short-lived warps, programmatic
// dependent launch (PDL) on or off, and whether the next launch's blocks may share an SM with the
// current one's (`excl` pads shared memory so that they may not, as a 64-register GEMV that
// fills the register file does). Prints the fraction of the copy-rate floor per shape and variant.
// Built and run by hand on the GPU machine:
//   nvcc -O3 -std=c++20 -arch=sm_90a -Ibench bench/skeleton_probe.cu -o /tmp/skel && /tmp/skel
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "probe_util.cuh"

#include "gemv_shapes.h"

namespace {

// Warp w of the grid reads units [first, last) of the weight, D units ahead in registers. With
// chunk == 0 the grid is one wave and the units are split evenly over all its warps; otherwise
// every warp reads `chunk` units and the grid has as many blocks as that takes. Like the GEMV:
// the weight loads may start before griddepcontrol.wait, the (tiny) activation read and the
// output write come after it.
template <int D>
__global__ void __launch_bounds__(256) skeleton_kernel(const uint4* __restrict__ w, long units, long chunk,
                                                      const float* __restrict__ x, float* __restrict__ out) {
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  const uint64_t pol = probe_evict_first();
  const long n_warps = static_cast<long>(gridDim.x) * (blockDim.x >> 5);
  const long warp = (static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  long first, last;
  if (chunk == 0) {
    first = units * warp / n_warps;
    last = units * (warp + 1) / n_warps;
  } else {
    first = min(units, warp * chunk);
    last = min(units, first + chunk);
  }
  const uint4* p = w + first * 32 + lane;
  const long n = last - first;
  uint4 ring[D];
#pragma unroll
  for (int i = 0; i < D; ++i) ring[i] = i < n ? ld_stream(p + i * 32, pol) : make_uint4(0, 0, 0, 0);
  asm volatile("griddepcontrol.wait;" ::: "memory");
  unsigned acc = __float_as_uint(x[lane]);
  for (long u = 0; u < n; u += D) {
#pragma unroll
    for (int i = 0; i < D; ++i) {
      acc ^= ring[i].x ^ ring[i].y ^ ring[i].z ^ ring[i].w;
      if (u + D + i < n) ring[i] = ld_stream(p + (u + D + i) * 32, pol);
    }
  }
  if (lane == 0 && n > 0) out[warp & 1023] = __uint_as_float(acc);
}

struct Variant {
  const char* name;
  int d;           // units in flight per warp: 2, 3, 4 or 8
  int bps;         // blocks (8 warps) per SM for the persistent grid
  long chunk;      // 0 = one persistent wave; else units per warp, as many waves as it takes
  bool pdl;
  bool excl;       // pad shared memory so that no second block (of this or the next launch) fits
};

template <int D>
void launch(const Variant& v, const uint4* w, long units, int grid, size_t smem, const float* x, float* out,
            cudaStream_t s) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(256);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = v.pdl ? 1 : 0;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  cudaLaunchKernelEx(&cfg, skeleton_kernel<D>, w, units, v.chunk, x, out);
}

void launch_any(const Variant& v, const uint4* w, long units, int grid, size_t smem, const float* x, float* out,
                cudaStream_t s) {
  switch (v.d) {
    case 2: return launch<2>(v, w, units, grid, smem, x, out, s);
    case 3: return launch<3>(v, w, units, grid, smem, x, out, s);
    case 4: return launch<4>(v, w, units, grid, smem, x, out, s);
    default: return launch<8>(v, w, units, grid, smem, x, out, s);
  }
}

}  // namespace

int main() {
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  const int sms = prop.multiProcessorCount;
  const size_t pool_bytes = size_t{1} << 30;  // the rotation: weight copies placed back to back
  uint4* pool;
  float *x, *out;
  cudaMalloc(&pool, pool_bytes);
  cudaMalloc(&x, 4096);
  cudaMalloc(&out, 4096);
  cudaMemset(pool, 1, pool_bytes);
  cudaMemset(x, 0, 4096);
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);

  // The floor's bandwidth, as the GEMV benchmark measures it: a device-to-device copy, read + write.
  const size_t half = pool_bytes / 2;
  cudaMemcpyAsync(reinterpret_cast<char*>(pool) + half, pool, half, cudaMemcpyDeviceToDevice, s);
  cudaEventRecord(a, s);
  for (int i = 0; i < 5; ++i) cudaMemcpyAsync(reinterpret_cast<char*>(pool) + half, pool, half, cudaMemcpyDeviceToDevice, s);
  cudaEventRecord(b, s);
  cudaEventSynchronize(b);
  float t_copy = 0;
  cudaEventElapsedTime(&t_copy, a, b);
  const double copy_Bps = 5.0 * 2.0 * half / (t_copy * 1e-3);

  const int smem_max = static_cast<int>(prop.sharedMemPerMultiprocessor) - 2048;
  for (auto* k : {skeleton_kernel<2>, skeleton_kernel<3>, skeleton_kernel<4>, skeleton_kernel<8>})
    cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, std::min(smem_max, 227 * 1024));

  const Variant variants[] = {
      {"p16d4", 4, 2, 0, true, false},        {"p16d4x", 4, 2, 0, true, true},   {"p16d8", 8, 2, 0, true, false},
      {"p32d2", 2, 4, 0, true, false},        {"p32d2x", 2, 4, 0, true, true},   {"p32d4", 4, 4, 0, true, false},
      {"p32d4np", 4, 4, 0, false, false},     {"p8d8", 8, 1, 0, true, false},    {"c16d3", 3, 0, 16, true, false},
      {"c16d3np", 3, 0, 16, false, false},    {"c32d4", 4, 0, 32, true, false},  {"c8d2", 2, 0, 8, true, false},
  };
  const int nv = sizeof(variants) / sizeof(variants[0]);
  std::printf("%s, %d SMs: copy %.0f GB/s (read + write); fraction of the copy-rate floor, weights only\n", prop.name,
              sms, copy_Bps / 1e9);
  std::printf("%-20s %8s", "shape", "floor_us");
  for (const Variant& v : variants) std::printf(" %8s", v.name);
  std::printf("\n");
  std::vector<double> logsum(nv, 0.0);
  for (const GemvShape& sh : kGemvShapes) {
    const size_t bytes = static_cast<size_t>(sh.n) * sh.k / 2;
    const long units = static_cast<long>(bytes / 512);
    const int copies = static_cast<int>(std::max<size_t>(2, pool_bytes / bytes));
    const double floor_us = bytes / copy_Bps * 1e6;
    std::printf("%-20s %8.2f", sh.name, floor_us);
    for (int vi = 0; vi < nv; ++vi) {
      const Variant& v = variants[vi];
      const int grid = v.chunk == 0 ? sms * v.bps : static_cast<int>((units + 8 * v.chunk - 1) / (8 * v.chunk));
      const size_t smem = v.excl ? static_cast<size_t>(std::min(smem_max / v.bps, 227 * 1024)) : 0;
      const int launches = std::max(copies * 2, 64);
      auto batch = [&] {
        for (int i = 0; i < launches; ++i)
          launch_any(v, pool + (i % copies) * (bytes / 16), units, grid, smem, x, out, s);
      };
      const double us = median_batch_ms(s, batch) * 1e3 / launches;
      std::printf(" %8.3f", floor_us / us);
      logsum[vi] += std::log(floor_us / us);
    }
    std::printf("\n");
  }
  std::printf("%-20s %8s", "geomean", "");
  for (int vi = 0; vi < nv; ++vi) std::printf(" %8.3f", std::exp(logsum[vi] / 15.0));
  std::printf("\n");
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) std::printf("error: %s\n", cudaGetErrorString(e));
  return e == cudaSuccess ? 0 : 1;
}

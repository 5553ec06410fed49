// What can a kernel that only reads a layer's 4-bit weights reach at the GEMV's own sizes, timed
// the way the GEMV benchmark times it (back-to-back launches over rotating weight copies, >= 512
// MB a rotation)? stream_probe.cu answers for one 8x-L2 buffer, where launch, ramp and tail are
// nothing; the 15 layer shapes are 11-235 MB, where they are not. Each variant is a grid
// skeleton with no arithmetic: how many warps per SM, how many 512-byte units a warp keeps in
// flight (D), one persistent wave of contiguous runs or many short-lived warps, programmatic
// dependent launch (PDL) on or off, and whether the next launch's blocks may share an SM with the
// current one's (`excl` pads shared memory so that they may not, as a 64-register GEMV that
// fills the register file does). Prints the fraction of the copy-rate floor per shape and variant.
// A second table (session 15) reads through the bulk copy engine instead of registers: bNsScK is N
// warps a SM, each with S stages of K units in shared memory (bench/results/skeleton_probe_bulk_*).
// Built and run by hand on the GPU machine (BULK_ONLY=1: the second table alone):
//   nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Ibench bench/skeleton_probe.cu -o /tmp/skel && /tmp/skel
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

// The same read through the bulk copy engine: lane 0 of each warp copies its run S stages ahead
// into the warp's own shared-memory ring (stages of CU units, cp.async.bulk completing on one
// mbarrier a stage, evict-first in L2), and the warp reads each stage with 16-byte shared loads.
// Bytes in flight are then bounded by shared memory, not by registers: the question is whether
// more of them, issued as a few large requests, reads closer to the floor than p16d4's 32 KB a SM.
__device__ __forceinline__ uint32_t probe_smem(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
template <int S, int CU>
__global__ void __launch_bounds__(256) bulk_kernel(const uint4* __restrict__ w, long units,
                                                   const float* __restrict__ x, float* __restrict__ out) {
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  extern __shared__ __align__(128) uint4 ring_all[];
  __shared__ __align__(8) uint64_t bar[8][S];
  const uint64_t pol = probe_evict_first();
  const long n_warps = static_cast<long>(gridDim.x) * (blockDim.x >> 5);
  const int wib = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const long warp = static_cast<long>(blockIdx.x) * (blockDim.x >> 5) + wib;
  const long first = units * warp / n_warps, last = units * (warp + 1) / n_warps;
  const long n = last - first, chunks = (n + CU - 1) / CU;
  const uint4* ring = ring_all + static_cast<size_t>(wib) * S * CU * 32;
  const uint32_t ring_s = probe_smem(ring), bar_s = probe_smem(&bar[wib][0]);
  const char* src = reinterpret_cast<const char*>(w + first * 32);
  if (lane == 0) {
#pragma unroll
    for (int s = 0; s < S; ++s) asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar_s + 8 * s) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncwarp();
  auto issue = [&](long c, int s) {
    if (lane != 0) return;
    const uint32_t bytes = static_cast<uint32_t>(min(static_cast<long>(CU), n - c * CU) * 512);
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar_s + 8 * s), "r"(bytes) : "memory");
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
            ring_s + s * CU * 512),
        "l"(src + c * CU * 512), "r"(bytes), "r"(bar_s + 8 * s), "l"(pol)
        : "memory");
  };
#pragma unroll
  for (int s = 0; s < S; ++s)
    if (s < chunks) issue(s, s);
  asm volatile("griddepcontrol.wait;" ::: "memory");
  unsigned acc = __float_as_uint(x[lane]);
  for (long c0 = 0; c0 < chunks; c0 += S) {
#pragma unroll
    for (int s = 0; s < S; ++s) {
      const long c = c0 + s;
      if (c >= chunks) break;
      const uint32_t parity = static_cast<uint32_t>((c / S) & 1);
      asm volatile(
          "{\n.reg .pred done;\nwait_%=:\n"
          "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
          "@!done bra wait_%=;\n}" ::"r"(bar_s + 8 * s),
          "r"(parity)
          : "memory");
#pragma unroll
      for (int i = 0; i < CU; ++i) {
        if (c * CU + i < n) {
          const uint4 v = ring[(s * CU + i) * 32 + lane];
          acc ^= v.x ^ v.y ^ v.z ^ v.w;
        }
      }
      __syncwarp();
      if (c + S < chunks) issue(c + S, s);
    }
  }
  if (lane == 0 && n > 0) out[warp & 1023] = __uint_as_float(acc);
}

struct Bulk {
  const char* name;
  int warps_per_sm;  // 8, 16 or 32 (blocks of 8 warps)
  int s, cu;         // stages of cu units a warp
};

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
  const bool bulk_only = std::getenv("BULK_ONLY") != nullptr;  // only the bulk copy table
  for (const GemvShape& sh : kGemvShapes) {
    if (bulk_only) break;
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

  // The bulk copy engine's variants, p16d4 again as the control of this second table.
  const Bulk bulks[] = {{"b16s2c4", 16, 2, 4}, {"b16s3c4", 16, 3, 4}, {"b16s4c4", 16, 4, 4}, {"b16s2c8", 16, 2, 8},
                        {"b16s4c2", 16, 4, 2}, {"b8s4c4", 8, 4, 4},   {"b8s4c8", 8, 4, 8},   {"b8s8c4", 8, 8, 4},
                        {"b32s2c2", 32, 2, 2}, {"b32s2c4", 32, 2, 4}, {"b8s2c4", 8, 2, 4},
                        {"b16s3c2", 16, 3, 2}, {"b24s2c2", 24, 2, 2}};
  const int nb = sizeof(bulks) / sizeof(bulks[0]);
  using BulkFn = void (*)(const uint4*, long, const float*, float*);
  auto bulk_fn = [](const Bulk& b) -> BulkFn {
    if (b.s == 2 && b.cu == 4) return bulk_kernel<2, 4>;
    if (b.s == 3 && b.cu == 4) return bulk_kernel<3, 4>;
    if (b.s == 4 && b.cu == 4) return bulk_kernel<4, 4>;
    if (b.s == 2 && b.cu == 8) return bulk_kernel<2, 8>;
    if (b.s == 4 && b.cu == 2) return bulk_kernel<4, 2>;
    if (b.s == 4 && b.cu == 8) return bulk_kernel<4, 8>;
    if (b.s == 8 && b.cu == 4) return bulk_kernel<8, 4>;
    if (b.s == 3 && b.cu == 2) return bulk_kernel<3, 2>;
    return bulk_kernel<2, 2>;
  };
  for (int bi = 0; bi < nb; ++bi)
    cudaFuncSetAttribute(bulk_fn(bulks[bi]), cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024);
  std::printf("\n%-20s %8s %8s", "shape", "floor_us", "p16d4");
  for (const Bulk& b : bulks) std::printf(" %8s", b.name);
  std::printf("\n");
  std::vector<double> blog(nb + 1, 0.0);
  for (const GemvShape& sh : kGemvShapes) {
    const size_t bytes = static_cast<size_t>(sh.n) * sh.k / 2;
    const long units = static_cast<long>(bytes / 512);
    const int copies = static_cast<int>(std::max<size_t>(2, pool_bytes / bytes));
    const double floor_us = bytes / copy_Bps * 1e6;
    const int launches = std::max(copies * 2, 64);
    std::printf("%-20s %8.2f", sh.name, floor_us);
    for (int bi = -1; bi < nb; ++bi) {
      auto batch = [&] {
        for (int i = 0; i < launches; ++i) {
          const uint4* wi = pool + (i % copies) * (bytes / 16);
          if (bi < 0) {
            launch_any(variants[0], wi, units, sms * variants[0].bps, 0, x, out, s);
            continue;
          }
          const Bulk& b = bulks[bi];
          cudaLaunchConfig_t cfg{};
          cfg.gridDim = dim3(sms * b.warps_per_sm / 8);
          cfg.blockDim = dim3(256);
          cfg.dynamicSmemBytes = static_cast<size_t>(8) * b.s * b.cu * 512;
          cfg.stream = s;
          cudaLaunchAttribute attr[1];
          attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
          attr[0].val.programmaticStreamSerializationAllowed = 1;
          cfg.attrs = attr;
          cfg.numAttrs = 1;
          cudaLaunchKernelEx(&cfg, bulk_fn(b), wi, units, x, out);
        }
      };
      const double us = median_batch_ms(s, batch) * 1e3 / launches;
      std::printf(" %8.3f", floor_us / us);
      blog[bi + 1] += std::log(floor_us / us);
    }
    std::printf("\n");
  }
  std::printf("%-20s %8s", "geomean", "");
  for (int bi = 0; bi <= nb; ++bi) std::printf(" %8.3f", std::exp(blog[bi] / 15.0));
  std::printf("\n");
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) std::printf("error: %s\n", cudaGetErrorString(e));
  return e == cudaSuccess ? 0 : 1;
}

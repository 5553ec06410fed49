// Can a small GEMV's weights be read while the kernel before it still runs? In the decode step
// the o projection follows decode attention (~8 us a layer with the memory bus nearly idle), and
// its blocks are launched early by programmatic dependent launch (PDL): everything a GEMV block
// does before griddepcontrol.wait may overlap attention. Today that is the first few units in
// registers; session 6 prefetched the whole weight into L2 there and every layer got slower, not
// understood. This probe answers with a stand-in for each side, timed as pairs:
//   primary:   `pblocks` blocks of 128 threads with 74 KB of shared memory (decode attention's
//              shape), each spinning `spin_us` on the global timer after its PDL trigger;
//   dependent: one wave of 2 blocks x 8 warps per SM reading a weight of `bytes` (no arithmetic):
//     reg   4 units (512 B) a warp in registers before the wait, the rest streamed after it
//           (the GEMV's present shape, the skeleton of skeleton_probe.cu);
//     l2    as reg, plus one cp.async.bulk.prefetch.L2 of the warp's whole run before the wait;
//     smem  the block's whole slice copied into shared memory (cp.async.bulk + mbarrier) before
//           the wait, read from there after it.
// For each it prints the pair's time, the dependent's exposed time (pair minus the primary alone)
// and, from %globaltimer stamps of one pair, when the dependent's first block started and when
// its last block passed the wait and ended, relative to the primary's start and end.
// Built and run by hand on the GPU machine:
//   nvcc -O3 -std=c++20 -arch=sm_90a -Ibench bench/overlap_probe.cu -o /tmp/overlap && /tmp/overlap
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "probe_util.cuh"

namespace {

struct Stamps {  // ns on %globaltimer; min over blocks for starts, max for ends
  unsigned long long p_start, p_end, d_start, d_waited, d_end;
};

__device__ __forceinline__ unsigned long long now_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void busy_kernel(unsigned long long spin_ns, Stamps* st) {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  const unsigned long long t0 = now_ns();
  if (threadIdx.x == 0) atomicMin(&st->p_start, t0);
  while (now_ns() - t0 < spin_ns) {
  }
  __syncthreads();
  if (threadIdx.x == 0) atomicMax(&st->p_end, now_ns());
}

enum Mode { kReg = 0, kL2 = 1, kSmem = 2 };

// Block b reads units [b * per_block, min(units, (b + 1) * per_block)); warp w of it the w-th
// eighth of that, contiguously.
template <int MODE>
__global__ void __launch_bounds__(256) dep_kernel(const uint4* __restrict__ w, long units, long per_block,
                                                  unsigned* __restrict__ out, Stamps* st) {
  extern __shared__ __align__(128) unsigned char smem[];
  const unsigned long long t_start = now_ns();
  if (threadIdx.x == 0) atomicMin(&st->d_start, t_start);
  const uint64_t pol = probe_evict_first();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const long b0 = blockIdx.x * per_block, b1 = min(units, b0 + per_block);
  const long nb = max(0L, b1 - b0);
  const long first = b0 + nb * warp / 8, last = b0 + nb * (warp + 1) / 8;
  const long n = last - first;
  unsigned acc = 0;
  unsigned long long* bar = reinterpret_cast<unsigned long long*>(smem);
  const unsigned bar_addr = static_cast<unsigned>(__cvta_generic_to_shared(bar));
  const uint4* sw = reinterpret_cast<const uint4*>(smem + 128);
  if constexpr (MODE == kSmem) {
    if (threadIdx.x == 0) {
      const unsigned bytes = static_cast<unsigned>(nb * 512);
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar_addr));
      asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
      asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar_addr), "r"(bytes) : "memory");
      const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem + 128));
      const char* src = reinterpret_cast<const char*>(w + b0 * 32);
      for (unsigned off = 0; off < bytes; off += 32768) {
        const unsigned len = min(32768u, bytes - off);
        asm volatile(
            "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst + off),
            "l"(src + off), "r"(len), "r"(bar_addr)
            : "memory");
      }
    }
    __syncthreads();
    asm volatile("griddepcontrol.wait;" ::: "memory");
    if (threadIdx.x == 0) atomicMax(&st->d_waited, now_ns());
    asm volatile(
        "{\n .reg .pred p;\n WAIT: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], 0;\n @!p bra WAIT;\n}" ::"r"(
            bar_addr)
        : "memory");
    const uint4* q = sw + (first - b0) * 32 + lane;
    for (long u = 0; u < n; ++u) {
      const uint4 v = q[u * 32];
      acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
  } else {
    const uint4* p = w + first * 32 + lane;
    if (MODE == kL2 && lane == 0 && n > 0)
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(w + first * 32), "r"(static_cast<unsigned>(n * 512))
                   : "memory");
    constexpr int D = 4;
    uint4 ring[D];
#pragma unroll
    for (int i = 0; i < D; ++i) ring[i] = i < n ? ld_stream(p + i * 32, pol) : make_uint4(0, 0, 0, 0);
    asm volatile("griddepcontrol.wait;" ::: "memory");
    if (threadIdx.x == 0) atomicMax(&st->d_waited, now_ns());
    for (long u = 0; u < n; u += D) {
#pragma unroll
      for (int i = 0; i < D; ++i) {
        acc ^= ring[i].x ^ ring[i].y ^ ring[i].z ^ ring[i].w;
        if (u + D + i < n) ring[i] = ld_stream(p + (u + D + i) * 32, pol);
      }
    }
  }
  if (lane == 0) out[(blockIdx.x * 8 + warp) & 4095] = acc;
  __syncthreads();
  if (threadIdx.x == 0) atomicMax(&st->d_end, now_ns());
}

template <typename K, typename... A>
void launch(K kernel, int grid, int block, size_t smem, bool pdl, cudaStream_t s, A... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(block);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = pdl ? 1 : 0;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  cudaLaunchKernelEx(&cfg, kernel, args...);
}

}  // namespace

int main() {
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  const int sms = prop.multiProcessorCount;
  const size_t pool_bytes = size_t{1} << 30;
  uint4* pool;
  unsigned* out;
  Stamps* st;
  cudaMalloc(&pool, pool_bytes);
  cudaMalloc(&out, 4096 * 4);
  cudaMalloc(&st, sizeof(Stamps));
  cudaMemset(pool, 1, pool_bytes);
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaFuncSetAttribute(busy_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 74 * 1024);
  for (auto* k : {dep_kernel<kReg>, dep_kernel<kL2>, dep_kernel<kSmem>})
    cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024);

  struct Size {
    const char* name;
    size_t bytes;
  };
  const Size sizes[] = {{"llama8b.o", 4096ul * 4096 / 2}, {"llama8b.qkv", 6144ul * 4096 / 2},
                        {"gemma.o", 5376ul * 4096 / 2}, {"llama8b.down", 4096ul * 14336 / 2}};
  const char* mode_name[] = {"reg", "l2", "smem"};
  const int grid = 2 * sms;
  std::printf("%s, %d SMs; primary: blocks of 128 threads, 74 KB shared, spinning; dependent: %d blocks x 8 warps\n",
              prop.name, sms, grid);
  std::printf("%-13s %6s %4s %5s %-5s %9s %9s %11s %11s %11s\n", "size", "MB", "pblk", "spin", "mode", "pair_us",
              "exposed", "d_start-p0", "d_wait-pend", "d_end-pend");
  for (const Size& sz : sizes) {
    const long units = static_cast<long>(sz.bytes / 512);
    const long per_block = (units + grid - 1) / grid;
    const int copies = static_cast<int>(std::max<size_t>(2, pool_bytes / sz.bytes));
    for (int pblocks : {64, 132}) {
      for (int spin_us : {0, 8}) {
        double alone_us = 0;
        for (int mode = -1; mode < 3; ++mode) {
          if (mode == kSmem && per_block * 512 + 128 > 113 * 1024) continue;  // two blocks an SM must fit
          const size_t dsmem = mode == kSmem ? per_block * 512 + 128 : 0;
          const int pairs = std::max(copies, 64);
          auto pair = [&](int i) {
            launch(busy_kernel, pblocks, 128, 74 * 1024, false, s, static_cast<unsigned long long>(spin_us) * 1000ull,
                   st);
            const uint4* wi = pool + (i % copies) * (sz.bytes / 16);
            if (mode == kReg) launch(dep_kernel<kReg>, grid, 256, dsmem, true, s, wi, units, per_block, out, st);
            if (mode == kL2) launch(dep_kernel<kL2>, grid, 256, dsmem, true, s, wi, units, per_block, out, st);
            if (mode == kSmem) launch(dep_kernel<kSmem>, grid, 256, dsmem, true, s, wi, units, per_block, out, st);
          };
          const double us = median_batch_ms(s, [&] {
                              for (int i = 0; i < pairs; ++i) pair(i);
                            }) * 1e3 / pairs;
          if (mode < 0) {
            alone_us = us;
            std::printf("%-13s %6.1f %4d %5d %-5s %9.2f\n", sz.name, sz.bytes / 1e6, pblocks, spin_us, "none", us);
            continue;
          }
          Stamps init{~0ull, 0, ~0ull, 0, 0};
          cudaMemcpyAsync(st, &init, sizeof init, cudaMemcpyHostToDevice, s);
          pair(1);
          Stamps h{};
          cudaMemcpyAsync(&h, st, sizeof h, cudaMemcpyDeviceToHost, s);
          cudaStreamSynchronize(s);
          auto rel = [](unsigned long long t, unsigned long long t0) { return (static_cast<double>(t) - t0) / 1e3; };
          std::printf("%-13s %6.1f %4d %5d %-5s %9.2f %9.2f %11.2f %11.2f %11.2f\n", sz.name, sz.bytes / 1e6, pblocks,
                      spin_us, mode_name[mode], us, us - alone_us, rel(h.d_start, h.p_start), rel(h.d_waited, h.p_end),
                      rel(h.d_end, h.p_end));
        }
      }
    }
  }
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) std::printf("error: %s\n", cudaGetErrorString(e));
  return e == cudaSuccess ? 0 : 1;
}

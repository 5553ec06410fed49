// Compile-only probe (not built by CMake): which shape of a warp's wgmma pipeline ptxas accepts
// without serializing it (ptxas info C7513 / C7514, "wgmma.mma_async instructions are serialized").
// docs/kernels.md, "Session 9": the warpgroup GEMV keeps one unit's wgmma in flight while it decodes
// the next (PIPE 0 below: decode unit i into A buffer i % 2 after unit i - 1's commit, wait_group 1,
// then scale unit i - 1's D), and ptxas serialized it there; this stripped-down loop with the same
// structure (table decode from shared memory, runtime descriptors, a barrier every 4 units) compiles
// without the message, so the cause in the kernel is something this loop lacks. PIPE 1 (decode one
// unit further ahead, before the previous fence) is serialized here too.
//
//   nvcc -DFMT_SHARED -DNIBBLE_HAVE_CUDA=1 -I src -I include -O3 -std=c++17 --expt-relaxed-constexpr \
//     "--generate-code=arch=compute_90a,code=[compute_90a,sm_90a]" -Xptxas=-v -c bench/wgmma_pipeline_probe.cu -o /tmp/p.o
#include "ops/cuda/gemv_w4.cuh"

using namespace nibble::cuda;

template <int PIPE>
__global__ void __launch_bounds__(128, 1) pipeline_probe(const uint4* w, float* out, int n, uint32_t lut) {
#if NB_WG_BODY
  const int lane = threadIdx.x & 31;
  float acc[16] = {}, d[2][16] = {};
  uint32_t a[4][4][4];
  const uint64_t desc0 = wg_desc_sw128(lut);
  auto decode = [&](uint32_t (&ab)[4][4], int i) {
    const uint4 q = w[i * 128 + threadIdx.x];
    const uint32_t wd[4] = {q.x, q.y, q.z, q.w};
    for (int kk = 0; kk < 4; ++kk) lut_codes(wd[kk], lut + lane * 4, ab[kk]);
  };
  if (PIPE) decode(a[0], 0);
  for (int base = 0; base < n; base += 4) {
    fence_proxy_async_smem();
    __syncthreads();
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int i = base + j;
      if (i >= n) break;
      uint64_t desc[4];
      for (int kk = 0; kk < 4; ++kk) desc[kk] = desc0 + ((((base / 4) % 3) * 16384 + j * 4096 + kk * 32) >> 4);
      if (PIPE) {
        if (i + 1 < n) decode(a[(j + 1) & 3], i + 1);
        wgmma_unit<4, true>(d[j & 1], a[j], desc);
      } else {
        decode(a[j & 1], i);
        wgmma_unit<4, true>(d[j & 1], a[j & 1], desc);
      }
      wgmma_wait<1>();
      for (int q = 0; q < 16; ++q) acc[q] += d[(j + 1) & 1][q] * 0.5f;
    }
  }
  wgmma_wait<0>();
  if ((n - 1) & 1) {
    for (int q = 0; q < 16; ++q) acc[q] += d[1][q] * 0.5f;
  } else {
    for (int q = 0; q < 16; ++q) acc[q] += d[0][q] * 0.5f;
  }
  for (int q = 0; q < 16; ++q) out[threadIdx.x * 16 + q] = acc[q];
#endif
}
template __global__ void pipeline_probe<0>(const uint4*, float*, int, uint32_t);
template __global__ void pipeline_probe<1>(const uint4*, float*, int, uint32_t);

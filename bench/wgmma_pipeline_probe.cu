// Compile-only probe (not built by CMake): whether ptxas pipelines a warp's wgmma with A from
// registers while the next unit's A is being decoded (ptxas info C7513 / C7514, "wgmma.mma_async
// instructions are serialized", names the function). docs/kernels.md, "Session 9": the warpgroup
// GEMV waits for each unit's wgmma because keeping one in flight was serialized. This stripped-down
// loop serializes both forms too: PIPE 0 decodes unit i into A buffer i % 2 after unit i - 1's
// commit (C7513), PIPE 1 decodes unit i + 1 before unit i's fence into four buffers (C7514).
// Removing the early exit (`if (i >= n) break;`) and waiting for everything at the end of each
// group (nothing outstanding across the back edge) is the form ptxas accepts; the kernel built
// that way gained a few percent where it did not spill (docs/kernels.md, "Session 9").
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

// Shared by the hand-run probes (stream_probe.cu, skeleton_probe.cu, overlap_probe.cu): the GEMV's
// weight load, a 16-byte streamed read that skips L1 and is tagged evict-first in L2, and the
// probes' timing of a batch of launches. The same as
// src/ops/cuda/common.cuh's ld_stream_v4, restated so that the probes stay single files that nvcc
// builds on the GPU machine without the project's headers (common.cuh needs fmt and core/).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

__device__ __forceinline__ uint64_t probe_evict_first() {
  uint64_t pol;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
  return pol;
}

__device__ __forceinline__ uint4 ld_stream(const void* p, uint64_t pol) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p), "l"(pol));
  return v;
}

// The median of `reps` timed runs of batch() on stream s after one untimed run, in milliseconds.
template <class Batch>
float median_batch_ms(cudaStream_t s, Batch&& batch, int reps = 5) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  batch();  // warm-up
  std::vector<float> ms;
  for (int rep = 0; rep < reps; ++rep) {
    cudaEventRecord(a, s);
    batch();
    cudaEventRecord(b, s);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// gpu_sleep: one thread spinning on the global timer. Benchmarks launch it before a timed batch
// so that the host can enqueue the whole batch while the GPU is busy: the events then time the
// kernels back to back, not the host's launch rate.
#include "ops/cuda/common.cuh"

namespace nibble::cuda {
namespace {

__global__ void sleep_kernel(uint64_t ns) {
  uint64_t t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (t - t0 < ns);
}

}  // namespace

Status gpu_sleep(Stream& s, double microseconds) {
  return launch("gpu_sleep", sleep_kernel, dim3(1), dim3(1), 0, s.get(), static_cast<uint64_t>(microseconds * 1e3));
}

}  // namespace nibble::cuda

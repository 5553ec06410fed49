// Shared device-side helpers for the CUDA ops: error checks that become Status, the launch helper,
// bf16 packing, and the few inline-PTX loads and matrix instructions the kernels need.
// Hardware-specific code lives only under src/ops/cuda/ (GUIDE.md).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"
#include "ops/cuda/device.h"

namespace nibble::cuda {

// A CUDA return code as a Status naming what was being done.
inline Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::ok();
  return Status::internal("{}: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define NB_CUDA_TRY(expr) NB_TRY(::nibble::cuda::cuda_status((expr), #expr))

// Launches `kernel<<<grid, block, smem, stream>>>(args...)` and returns the launch error (bad
// configuration, missing image for this architecture) as a Status naming the op. It does not
// synchronize: faults inside the kernel surface at the next synchronizing call.
template <typename... KArgs, typename... Args>
Status launch(const char* op, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
              cudaStream_t stream, Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return Status::ok();  // empty problem
  kernel<<<grid, block, smem, stream>>>(std::forward<Args>(args)...);
  return cuda_status(cudaGetLastError(), op);
}

inline int ceil_div(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

// ---- programmatic dependent launch (Hopper) ------------------------------------------------
// A decode step is ~300 kernels, many of them a few microseconds long, so the gap between one
// kernel's last block and the next kernel's first is a visible share of the step. With PDL the
// next kernel is launched while the previous one still runs: its blocks start, do what does not
// depend on the previous kernel (a GEMV streams its weights), and wait in pdl_wait() until the
// previous grid has completed and its writes are visible.
//
// Rules for a kernel launched with launch_pdl: every block calls pdl_wait() before it reads
// anything an earlier kernel wrote, before it writes anything at all, and before it exits (so
// that "complete" stays transitive along the stream); pdl_trigger() lets the next kernel launch
// early. Both are no-ops below sm_90, and launch_pdl launches normally on devices without PDL or
// when NIBBLE_NO_PDL is set (for A/B measurements).
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether launch_pdl asks for programmatic serialization on this stream's device.
bool pdl_enabled(const Stream& s);

// The launch attribute grouping blocks in thread-block clusters of `cluster` along x.
inline cudaLaunchAttribute cluster_dim_attr(int cluster) {
  cudaLaunchAttribute a = {};
  a.id = cudaLaunchAttributeClusterDimension;
  a.val.clusterDim.x = static_cast<unsigned>(cluster);
  a.val.clusterDim.y = 1;
  a.val.clusterDim.z = 1;
  return a;
}

// launch_pdl with blocks grouped in thread-block clusters of `cluster` along x (1: none; more
// needs sm_90 and grid.x a multiple of it).
template <typename... KArgs, typename... Args>
Status launch_pdl_cluster(const char* op, int cluster, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                          const Stream& s, Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return Status::ok();  // empty problem
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s.get();
  cudaLaunchAttribute attr[2];
  cfg.attrs = attr;
  if (cluster > 1) attr[cfg.numAttrs++] = cluster_dim_attr(cluster);
  if (pdl_enabled(s)) {
    attr[cfg.numAttrs].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[cfg.numAttrs++].val.programmaticStreamSerializationAllowed = 1;
  }
  return cuda_status(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...), op);
}

template <typename... KArgs, typename... Args>
Status launch_pdl(const char* op, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, const Stream& s,
                  Args&&... args) {
  return launch_pdl_cluster(op, 1, kernel, grid, block, smem, s, std::forward<Args>(args)...);
}

// ---- device helpers -----------------------------------------------------------------------

__device__ __forceinline__ float bf16_bits_to_f32(uint32_t bits16) { return __uint_as_float(bits16 << 16); }

// Two floats as one bf16x2 word (round to nearest even), `lo` in the low half.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// The gated activations' act(gate): silu, or gelu with the tanh approximation. One definition for
// act_mul_fused and the GEMV's gated epilogue, so that the two paths give the same bits.
__device__ __forceinline__ float gated_act(float g, bool gelu_tanh) {
  if (gelu_tanh) {
    const float inner = 0.7978845608028654f * (g + 0.044715f * g * g * g);
    return 0.5f * g * (1.0f + tanhf(inner));
  }
  return g / (1.0f + expf(-g));
}

// Streamed-once data (4-bit weights, their scales): skip L1, and tag the lines evict-first in L2
// so that the activations and the reused scale tables stay cached. The L2 hint needs a cache
// policy register (createpolicy, sm_80+); make it once per thread and pass it to every load.
__device__ __forceinline__ uint64_t evict_first_policy() {
  uint64_t pol;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
  return pol;
}
__device__ __forceinline__ uint64_t evict_last_policy() {
  uint64_t pol;
  asm("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(pol));
  return pol;
}
__device__ __forceinline__ uint4 ld_stream_v4(const void* p, uint64_t pol) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p), "l"(pol));
  return v;
}
__device__ __forceinline__ uint2 ld_stream_v2(const void* p, uint64_t pol) {
  uint2 v;
  asm("ld.global.nc.L1::no_allocate.L2::cache_hint.v2.u32 {%0,%1}, [%2], %3;"
      : "=r"(v.x), "=r"(v.y)
      : "l"(p), "l"(pol));
  return v;
}
__device__ __forceinline__ uint32_t ld_stream_u32(const void* p, uint64_t pol) {
  uint32_t v;
  asm("ld.global.nc.L1::no_allocate.L2::cache_hint.u32 %0, [%1], %2;" : "=r"(v) : "l"(p), "l"(pol));
  return v;
}
__device__ __forceinline__ uint32_t ld_stream_u16(const void* p, uint64_t pol) {
  uint16_t v;
  asm("ld.global.nc.L1::no_allocate.L2::cache_hint.u16 %0, [%1], %2;" : "=h"(v) : "l"(p), "l"(pol));
  return v;
}

// Shared memory by 32-bit shared-window address: computed once, these keep the compiler from
// rebuilding generic -> shared conversions inside hot loops.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ uint32_t lds_u32(uint32_t a) {
  uint32_t v;
  asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ uint32_t lds_u16(uint32_t a) {
  uint16_t v;
  asm volatile("ld.shared.u16 %0, [%1];" : "=h"(v) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ uint2 lds_v2(uint32_t a) {
  uint2 v;
  asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];" : "=r"(v.x), "=r"(v.y) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ uint4 lds_v4(uint32_t a) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a) : "memory");
  return v;
}

// Asynchronous 16-byte global -> shared copies (sm_80+), bypassing L1, with an L2 policy.
__device__ __forceinline__ void cp_async16(uint32_t smem, const void* gmem, uint64_t pol) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;" ::"r"(smem), "l"(gmem), "l"(pol)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// The bulk copy engine (sm_90): one thread hands a contiguous global range to the copy engine,
// which writes it to shared memory and counts its bytes on an mbarrier; the readers wait on the
// barrier's phase. Bytes in flight are then bounded by shared memory, not by registers. On older
// architectures these compile to a trap (the host never picks a bulk configuration there).
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
#else
  __trap();
#endif
}
// Makes the initialized barriers visible to the copy engine (the async proxy).
__device__ __forceinline__ void mbar_init_fence() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}
// Arrives on `bar` expecting `bytes` more from the copy engine, then copies [src, src + bytes) to
// shared address dst (both 16-byte aligned, bytes a multiple of 16) with L2 policy `pol`.
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar, uint64_t pol) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(dst),
      "l"(src), "r"(bytes), "r"(bar), "l"(pol)
      : "memory");
#else
  __trap();
#endif
}
// Waits until the barrier's phase with parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "{\n.reg .pred done;\nwait_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_%=;\n}" ::"r"(bar),
      "r"(parity)
      : "memory");
#else
  __trap();
#endif
}

// D += A * B on the tensor cores: A 16x16 bf16 (row), B 16x8 bf16 (col), D 16x8 fp32.
// Fragment ownership (lane = 4 * g + t): A regs (g, 2t..), (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..);
// B regs (k 2t.., n g), (k 2t+8.., n g); D (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1).
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                               uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace nibble::cuda

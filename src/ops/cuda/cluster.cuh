// Thread-block clusters of CL blocks (sm_90) working on one problem through distributed shared
// memory: a barrier, another block's copy of a shared variable, this block's rank. With CL = 1 they
// reduce to one block's barrier and its own variable, so a kernel templated on CL serves devices
// without clusters too. Used by the sampler (a row per cluster) and decode attention (a head's
// context splits per cluster).
#pragma once

#include <cooperative_groups.h>

namespace nibble::cuda {

template <int CL>
__device__ __forceinline__ void cl_sync() {
  if constexpr (CL == 1) {
    __syncthreads();
  } else {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    cooperative_groups::this_cluster().sync();
#else
    __trap();  // the host launches CL > 1 on sm_90 only
#endif
  }
}
// Block q's copy of a shared variable of this block.
template <int CL, class T>
__device__ __forceinline__ T* cl_at(T* p, int q) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (CL > 1) return cooperative_groups::this_cluster().map_shared_rank(p, q);
#endif
  return p;
}
template <int CL>
__device__ __forceinline__ int cl_rank() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (CL > 1) return static_cast<int>(cooperative_groups::this_cluster().block_rank());
#endif
  return 0;
}

}  // namespace nibble::cuda

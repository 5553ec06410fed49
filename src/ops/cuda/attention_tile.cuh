// Device helpers shared by the tensor-core attention kernels (paged_attention.cu for decode,
// prefill_attention.cu for chunks): shared-memory matrix loads, and the copy of a tile of keys and
// values from the paged cache into shared memory.
#pragma once

#include "ops/cuda/common.cuh"

namespace nibble::cuda {

constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void sts_zero16(uint32_t addr) {
  asm volatile("st.shared.v4.u32 [%0], {%1,%1,%1,%1};" ::"r"(addr), "r"(0) : "memory");
}

// Copies keys and values [j0, j0 + rows) of one kv head from the paged bf16 cache (layout
// [n_blocks, block_size, n_kv_heads, D], rows found through the sequence's block table `bt`) into
// shared-memory tiles of `stride` bytes per row, with 16-byte cp.async copies; rows past `last`
// are zeros, so that P = 0 never meets a NaN in V. Each thread copies a fixed 16-byte column of
// every (kThreads / cpr)-th row when cpr (16-byte chunks per row) divides the block (head_dim
// 8..256, powers of two); the block table's divisions become shifts when block_size is a power of
// two. Made once per block, used once per tile.
template <int kThreads>
struct PagedKvTile {
  const uint16_t* kc;
  const uint16_t* vc;
  const int32_t* bt;
  int block_size, n_kv_heads, kvh, D, cpr, stride;
  uint64_t pol;
  bool bs_pow2, fixed_col;
  int bs_shift, my_ch, my_row, row_step;

  __device__ PagedKvTile(const uint16_t* kc_, const uint16_t* vc_, const int32_t* bt_, int block_size_, int n_kv_heads_,
                         int kvh_, int D_, int stride_, uint64_t pol_)
      : kc(kc_), vc(vc_), bt(bt_), block_size(block_size_), n_kv_heads(n_kv_heads_), kvh(kvh_), D(D_), cpr(D_ / 8),
        stride(stride_), pol(pol_) {
    bs_pow2 = (block_size & (block_size - 1)) == 0;
    bs_shift = __ffs(block_size) - 1;
    fixed_col = kThreads % cpr == 0;
    my_ch = threadIdx.x % cpr;
    my_row = threadIdx.x / cpr;
    row_step = kThreads / cpr;
  }

  __device__ void copy_row(int j, int last, int r, int ch, uint32_t k_base, uint32_t v_base) const {
    const uint32_t dk = k_base + r * stride + ch * 16, dv = v_base + r * stride + ch * 16;
    if (j <= last) {
      const int blk = bs_pow2 ? j >> bs_shift : j / block_size;
      const int off = j - blk * block_size;
      const size_t slot = static_cast<size_t>(bt[blk]) * block_size + off;
      const size_t src = (slot * n_kv_heads + kvh) * D + ch * 8;
      cp_async16(dk, kc + src, pol);
      cp_async16(dv, vc + src, pol);
    } else {
      sts_zero16(dk);
      sts_zero16(dv);
    }
  }

  __device__ void load(int j0, int rows, int last, uint32_t k_base, uint32_t v_base) const {
    if (fixed_col) {
      for (int r = my_row; r < rows; r += row_step) copy_row(j0 + r, last, r, my_ch, k_base, v_base);
    } else {
      for (int c = threadIdx.x; c < rows * cpr; c += kThreads) {
        const int r = c / cpr;
        copy_row(j0 + r, last, r, c - r * cpr, k_base, v_base);
      }
    }
  }
};

}  // namespace nibble::cuda

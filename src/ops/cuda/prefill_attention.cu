// Paged prefill attention, FlashAttention-2 style (attention.h). A block = 4 warps = BM rows of
// (query token, head) pairs of one sequence (BM = 128, or 64 for head_dim > 128), all heads of one
// kv head's GQA group, so each key and value tile read from the cache serves the whole group. Rows
// are ordered token-major (row r is token r / group, head r % group), so a tile's rows cover
// consecutive tokens and its key range is [min first, max pos] over its rows.
//
// Per key tile of BN keys: cp.async copies K and V rows (through the block table) into a
// double-buffered shared ring; each warp computes the scores of its MT m-tiles of 16 rows with
// mma.m16n8k16 (Q and K fragments by ldmatrix, each K fragment serving the MT m-tiles), applies
// scale, softcap and the causal/window mask, updates the online softmax in fp32 (exp2 domain),
// and multiplies P (bf16, straight from the score registers) by V (ldmatrix.trans). Two m-tiles
// per warp measured 1.2-1.5x faster than one at head_dim 128 (fewer shared-memory reads per MMA). head_dim runs in one of four compile-time buckets (32, 64, 128, 256) with
// run-time guards inside unrolled loops, so any multiple of 8 up to 256 works; a head_dim that is
// not a multiple of 16 is zero-padded to one in shared memory for QK^T.
#include <climits>

#include "ops/cuda/attention.h"
#include "ops/cuda/attention_tile.cuh"
#include "ops/cuda/common.cuh"

namespace nibble::cuda {
namespace {

constexpr int kWarps = 4, kThreads = kWarps * 32;

// The configurations, by head_dim bucket: MT m-tiles of 16 rows per warp (two halve the shared
// memory reads of K and V per MMA, but cost registers), BN keys per tile.
template <int DMAX, int MT_ = (DMAX <= 128 ? 2 : 1)>
struct Cfg {
  static constexpr int MT = MT_;
  static constexpr int BN = DMAX > 128 || (DMAX == 128 && MT == 2) ? 32 : 64;  // registers: o[MT][DMAX/8][4] + s[MT][BN/8][4]
  static constexpr int BM = 16 * kWarps * MT;        // rows per block
  static constexpr int smem(int dp) { return (BM + 4 * BN) * (2 * dp + 16); }
};

template <int DMAX, int MT_>
__global__ void __launch_bounds__(kThreads) prefill_attn_kernel(const uint16_t* __restrict__ q,
                                                                const int32_t* __restrict__ positions,
                                                                const PrefillSeq* __restrict__ seqs,
                                                                const int32_t* __restrict__ block_tables,
                                                                const uint16_t* __restrict__ kc,
                                                                const uint16_t* __restrict__ vc, PrefillAttnParams p,
                                                                uint16_t* __restrict__ out) {
  constexpr int MT = Cfg<DMAX, MT_>::MT, BN = Cfg<DMAX, MT_>::BN, BM = Cfg<DMAX, MT_>::BM;
  extern __shared__ uint4 smem[];
  __shared__ int s_pos[BM], s_first[BM];

  const PrefillSeq sq = seqs[blockIdx.z];
  const int group = p.n_heads / p.n_kv_heads;
  const int n_rows = sq.n_q * group;
  const int r0 = (gridDim.x - 1 - blockIdx.x) * BM;  // the latest (longest) tiles start first
  if (r0 >= n_rows) return;
  const int kvh = blockIdx.y;
  const int D = p.head_dim, Dp = (D + 15) & ~15, cpr = D / 8;  // cpr: 16-byte chunks per row
  const int stride = 2 * Dp + 16;  // bytes per shared row; +16 keeps ldmatrix rows in distinct banks
  const uint32_t sQ = smem_addr(smem), sK = sQ + BM * stride, sV = sK + 2 * BN * stride;
  const int32_t* bt = block_tables + static_cast<size_t>(sq.table_row) * p.max_blocks;
  const uint64_t pol_q = evict_first_policy(), pol_kv = evict_last_policy();

  for (int r = threadIdx.x; r < BM; r += kThreads) {
    const int row = r0 + r;
    int pos = -1, first = INT_MAX;
    if (row < n_rows) {
      pos = positions[sq.q_begin + row / group];
      first = p.window > 0 ? max(0, pos - p.window + 1) : 0;
    }
    s_pos[r] = pos;
    s_first[r] = first;
  }
  if (Dp != D) {  // the zero padding of head_dim up to the MMA's k = 16 (never written again)
    for (int r = threadIdx.x; r < BM + 4 * BN; r += kThreads) sts_zero16(sQ + r * stride + 2 * D);
  }
  for (int c = threadIdx.x; c < BM * cpr; c += kThreads) {
    const int r = c / cpr, ch = c - r * cpr, row = r0 + r;
    const uint32_t dst = sQ + r * stride + ch * 16;
    if (row < n_rows) {
      const int tok = sq.q_begin + row / group, head = kvh * group + row % group;
      cp_async16(dst, q + (static_cast<size_t>(tok) * p.n_heads + head) * D + ch * 8, pol_q);
    } else {
      sts_zero16(dst);
    }
  }
  __syncthreads();

  // The block's key range, and the bounds that let a tile skip the mask.
  int kmin = INT_MAX, kmax = -1, pos_min = INT_MAX, first_max = 0;
  for (int r = 0; r < BM; ++r) {
    const int pos = s_pos[r];
    if (pos < 0) continue;
    kmin = min(kmin, s_first[r]);
    kmax = max(kmax, pos);
    pos_min = min(pos_min, pos);
    first_max = max(first_max, s_first[r]);
  }
  const int n_kt = (kmax - kmin + BN) / BN;

  const PagedKvTile<kThreads> tile(kc, vc, bt, p.block_size, p.n_kv_heads, kvh, D, stride, pol_kv);
  auto load_kv = [&](int kt, int buf) {
    tile.load(kmin + kt * BN, BN, kmax, sK + buf * BN * stride, sV + buf * BN * stride);
  };

  load_kv(0, 0);
  cp_async_commit();  // with the Q copies

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  // This thread's rows: m-tile mt, rows g and g + 8 of it.
  int pos_r[MT][2], first_r[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int r = (warp * MT + mt) * 16 + g + 8 * i;
      pos_r[mt][i] = s_pos[r];
      first_r[mt][i] = s_first[r];
    }
  const float scale = p.scale, cap = p.softcap, inv_cap = p.softcap > 0 ? 1.0f / p.softcap : 0.0f;
  const float scale_log2 = p.scale * kLog2e;

  float o[MT][DMAX / 8][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < DMAX / 8; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.0f;
  float m[MT][2], l[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;

  // ldmatrix row addresses (lane -> row, column of its 8x8 matrix), constant across tiles.
  const uint32_t q_addr = sQ + (warp * MT * 16 + (lane & 15)) * stride + (lane >> 4) * 16;
  const uint32_t k_off = ((lane & 7) + 8 * (lane >> 4)) * stride + ((lane >> 3) & 1) * 16;
  const uint32_t v_off = ((lane & 7) + 8 * ((lane >> 3) & 1)) * stride + (lane >> 4) * 16;

  for (int kt = 0; kt < n_kt; ++kt) {
    if (kt + 1 < n_kt) {
      load_kv(kt + 1, (kt + 1) & 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int buf = kt & 1, j0 = kmin + kt * BN;
    const uint32_t kb = sK + buf * BN * stride + k_off, vb = sV + buf * BN * stride + v_off;

    // S = Q K^T: each K fragment serves the warp's MT m-tiles.
    float sc[MT][BN / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int i = 0; i < BN / 8; ++i) sc[mt][i][0] = sc[mt][i][1] = sc[mt][i][2] = sc[mt][i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DMAX / 16; ++kk) {
      if (kk * 16 >= Dp) break;
      uint32_t a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) ldsm_x4(a[mt], q_addr + mt * 16 * stride + kk * 32);
#pragma unroll
      for (int np = 0; np < BN / 16; ++np) {
        uint32_t b[4];
        ldsm_x4(b, kb + np * 16 * stride + kk * 32);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_bf16_16816(sc[mt][2 * np], a[mt], b[0], b[1]);
          mma_bf16_16816(sc[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }

    // Scale, softcap, mask (scores in the exp2 domain), then the online softmax per row.
    const bool unmasked = j0 + BN - 1 <= pos_min && j0 >= first_max;
    uint32_t pa[MT][BN / 16][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float v;
          if (cap > 0) v = cap * tanhf(sc[mt][nt][e] * scale * inv_cap) * kLog2e;
          else v = sc[mt][nt][e] * scale_log2;
          if (!unmasked) {
            const int j = j0 + nt * 8 + 2 * t + (e & 1);
            if (j > pos_r[mt][e >> 1] || j < first_r[mt][e >> 1]) v = -INFINITY;
          }
          sc[mt][nt][e] = v;
        }
      float mx[2] = {m[mt][0], m[mt][1]};
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt) {
        mx[0] = fmaxf(mx[0], fmaxf(sc[mt][nt][0], sc[mt][nt][1]));
        mx[1] = fmaxf(mx[1], fmaxf(sc[mt][nt][2], sc[mt][nt][3]));
      }
      float base[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
        base[i] = mx[i] == -INFINITY ? 0.0f : mx[i];  // a row with no visible key yet stays at zero
        const float corr = exp2f(m[mt][i] - base[i]);
        m[mt][i] = mx[i];
        l[mt][i] *= corr;
#pragma unroll
        for (int nt = 0; nt < DMAX / 8; ++nt) {
          o[mt][nt][2 * i] *= corr;
          o[mt][nt][2 * i + 1] *= corr;
        }
      }
#pragma unroll
      for (int nt = 0; nt < BN / 8; ++nt) {
        const float p0 = exp2f(sc[mt][nt][0] - base[0]), p1 = exp2f(sc[mt][nt][1] - base[0]);
        const float p2 = exp2f(sc[mt][nt][2] - base[1]), p3 = exp2f(sc[mt][nt][3] - base[1]);
        l[mt][0] += p0 + p1;
        l[mt][1] += p2 + p3;
        pa[mt][nt / 2][(nt & 1) * 2] = pack_bf16x2(p0, p1);
        pa[mt][nt / 2][(nt & 1) * 2 + 1] = pack_bf16x2(p2, p3);
      }
    }

    // O += P V: k = the tile's keys, n = head_dim in pairs of 8-wide tiles; each V fragment
    // serves the warp's MT m-tiles.
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk)
#pragma unroll
      for (int dp = 0; dp < DMAX / 16; ++dp) {
        if (dp * 16 >= D) break;
        uint32_t b[4];
        ldsm_x4_trans(b, vb + kk * 16 * stride + dp * 32);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_bf16_16816(o[mt][2 * dp], pa[mt][kk], b[0], b[1]);
          if (dp * 16 + 8 < D) mma_bf16_16816(o[mt][2 * dp + 1], pa[mt][kk], b[2], b[3]);
        }
      }
    __syncthreads();  // every warp is done with this buffer before the next copy into it
  }

#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float li = l[mt][i];
      li += __shfl_xor_sync(0xffffffffu, li, 1);
      li += __shfl_xor_sync(0xffffffffu, li, 2);
      const int row = r0 + (warp * MT + mt) * 16 + g + 8 * i;
      if (row >= n_rows) continue;
      const float inv = li > 0 ? 1.0f / li : 0.0f;
      const int tok = sq.q_begin + row / group, head = kvh * group + row % group;
      uint16_t* dst = out + (static_cast<size_t>(tok) * p.n_heads + head) * D + 2 * t;
#pragma unroll
      for (int nt = 0; nt < DMAX / 8; ++nt) {
        if (nt * 8 >= D) break;
        *reinterpret_cast<uint32_t*>(dst + nt * 8) = pack_bf16x2(o[mt][nt][2 * i] * inv, o[mt][nt][2 * i + 1] * inv);
      }
    }
}

template <int DMAX, int MT = Cfg<DMAX>::MT>
Status launch_prefill(const uint16_t* q, const int32_t* positions, const PrefillSeq* seqs, int n_seqs, int max_q,
                      const int32_t* block_tables, const uint16_t* kc, const uint16_t* vc, const PrefillAttnParams& p,
                      uint16_t* out, Stream& s) {
  using C = Cfg<DMAX, MT>;
  // Raised once to the bucket's largest need, so that no call happens under graph capture.
  static const cudaError_t allowed = cudaFuncSetAttribute(
      prefill_attn_kernel<DMAX, MT>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::smem(DMAX));
  NB_TRY(cuda_status(allowed, "paged_prefill_attention: shared memory limit"));
  const int group = p.n_heads / p.n_kv_heads;
  const dim3 grid(ceil_div(static_cast<int64_t>(max_q) * group, C::BM), p.n_kv_heads, n_seqs);
  return launch("paged_prefill_attention", prefill_attn_kernel<DMAX, MT>, grid, dim3(kThreads),
                C::smem((p.head_dim + 15) & ~15), s.get(), q, positions, seqs, block_tables, kc, vc, p, out);
}

}  // namespace

Status paged_prefill_attention(const uint16_t* q, const int32_t* positions, const PrefillSeq* seqs, int n_seqs,
                               int max_q, const int32_t* block_tables, const uint16_t* k_cache,
                               const uint16_t* v_cache, const PrefillAttnParams& p, uint16_t* out, Stream& s) {
  if (p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0)
    return Status::invalid("paged_prefill_attention: n_heads {} is not a multiple of n_kv_heads {}", p.n_heads,
                           p.n_kv_heads);
  if (p.head_dim <= 0 || p.head_dim % 8 != 0 || p.head_dim > 256)
    return Status::unsupported("paged_prefill_attention: head_dim must be a multiple of 8 up to 256, got {}",
                               p.head_dim);
  if (p.block_size <= 0) return Status::invalid("paged_prefill_attention: block_size must be > 0");
  if (n_seqs > 65535) return Status::unsupported("paged_prefill_attention: at most 65535 sequences, got {}", n_seqs);
  if (n_seqs <= 0 || max_q <= 0) return Status::ok();
  const int dp = (p.head_dim + 15) & ~15;
  if (dp <= 32) return launch_prefill<32>(q, positions, seqs, n_seqs, max_q, block_tables, k_cache, v_cache, p, out, s);
  if (dp <= 64) return launch_prefill<64>(q, positions, seqs, n_seqs, max_q, block_tables, k_cache, v_cache, p, out, s);
  if (dp <= 128) return launch_prefill<128>(q, positions, seqs, n_seqs, max_q, block_tables, k_cache, v_cache, p, out, s);
  return launch_prefill<256>(q, positions, seqs, n_seqs, max_q, block_tables, k_cache, v_cache, p, out, s);
}

}  // namespace nibble::cuda

// The warpgroup variant of the 4-bit skinny GEMM (configurations with `wg` > 0, sm_90a only).
// Included by gemv_w4.cuh after gemv_w4_kernel: it reuses W4KernelParams, the format policies,
// the load helpers, store_fragment, splitk_merge and the PDL rules of that file.
//
// Why (docs/kernels.md, "Session 9"): at 17-32 rows the mma.sync kernel executes ~116-154
// instructions a warp and unit of 64 columns (16 table lookups of 3 instructions, 16 MMAs, 8
// activation loads of 16 bytes, 16 FFMAs, fresh accumulators), 4 warps' worth of which is more
// issue slots than an SM has in the time the floor allows for their 2 KB of weights; it runs at a
// fifth of the floor. wgmma takes B from shared memory and 64 rows at once: per warp and unit the
// 16 MMAs and 8 activation loads become 4 wgmma.
//  - block: `WG` warpgroups, warpgroup v owns 64 rows (warp w: row tile 4 * (WG * bx + v) + w % 4),
//    all of them the block's K range (split across blocks as in gemv_w4_kernel);
//  - weights stream into registers AHEAD units ahead (the packed layout's 16 bytes a lane are the
//    unit's four k16 A fragments, as for mma.sync: the wgmma A fragment of a warp is the m16n8k16
//    one); decoded by the format's codes() into registers;
//  - activations: the block copies a group of 4 units (all M rows, 256 columns) at a time into one
//    of 2 shared stages (permuted to the weights' K order, see load_xg), each unit a K-major tile of
//    8 * NT rows x 128 bytes with the 128-byte swizzle, so that one matrix descriptor advanced 32
//    bytes per k16 step is B;
//  - NF4 / INT4: each unit's four wgmma go into a fresh accumulator D (scale-d = 0 first); the warp
//    waits for them (one unit in flight made ptxas serialize, docs/kernels.md) and scales D per row
//    in fp32 into the total, as gemv_w4_kernel does with its MMA fragments; MXFP4: the power-of-two
//    block scales multiply the decoded A exactly in bf16 and the wgmma accumulate into the total.
// D of m64nNk16 holds, per lane and n8 chunk i, rows g, g + 8 and tokens 8i + 2t, 8i + 2t + 1: the
// mma.sync D fragment, so the epilogue is gemv_w4_kernel's.
#pragma once

namespace nibble::cuda {

// wgmma needs the sm_90a feature set: the kernel's body exists only in that image.
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define NB_WG_BODY 1
#else
#define NB_WG_BODY 0
#endif

#if NB_WG_BODY
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}
// Writes by the generic proxy (st.shared) made visible to the async proxy (wgmma's operand reads).
__device__ __forceinline__ void fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }
// No instruction: tells the compiler the registers change here, so that reads of a wgmma's
// results stay after its wait.
template <int N>
__device__ __forceinline__ void keep_f(float (&v)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(v[i])::"memory");
}

// The shared-memory descriptor of a K-major bf16 operand with the 128-byte swizzle: start address,
// leading offset unused (1), stride 1024 bytes between 8-row groups, swizzle mode 1 (bits 62-63).
// Offsets inside shared memory are added to the low 14 bits as (bytes >> 4).
__device__ __forceinline__ uint64_t wg_desc_sw128(uint32_t saddr) {
  return static_cast<uint64_t>((saddr & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) | (1ull << 62);
}

// One unit's tensor-core work, as one asm statement: the fence, four wgmma m64 x (8 * NT) x k16
// (bf16 in, fp32 accumulate; A this warp's 16 rows of k16 step kk in a[kk], the m16n8k16 A
// fragment; B from shared memory by descriptor desc[kk]) and the commit. kFresh: the first one
// overwrites D (D = A * B), the others add. One statement, so that nothing the compiler
// schedules falls between the fence and the commit. The inputs (NB_WG_IN) follow the N / 2
// accumulator registers: a[kk][r] from %(N / 2 + 4 kk + r), desc[kk], then kFirst.
#define NB_WG_IN                                                                                                       \
  "r"(a[0][0]), "r"(a[0][1]), "r"(a[0][2]), "r"(a[0][3]), "r"(a[1][0]), "r"(a[1][1]), "r"(a[1][2]), "r"(a[1][3]),     \
      "r"(a[2][0]), "r"(a[2][1]), "r"(a[2][2]), "r"(a[2][3]), "r"(a[3][0]), "r"(a[3][1]), "r"(a[3][2]), "r"(a[3][3]), \
      "l"(desc[0]), "l"(desc[1]), "l"(desc[2]), "l"(desc[3]), "n"(kFirst)
#define NB_WG_ONE(N, DREGS, A0, DESC, PRED) \
  "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32.bf16.bf16 " DREGS ", {" A0 "}, " DESC ", " PRED ", 1, 1, 0;\n"
template <int NT, bool kFresh>
__device__ __forceinline__ void wgmma_unit(float (&d)[NT * 4], const uint32_t (&a)[4][4], const uint64_t (&desc)[4]) {
  constexpr int kFirst = kFresh ? 0 : 1;
  if constexpr (NT == 1) {
#define NB_D "{%0,%1,%2,%3}"
    asm volatile(
        "{\n.reg .pred p0, p1;\nsetp.ne.b32 p0, %24, 0;\nsetp.ne.b32 p1, 1, 0;\nwgmma.fence.sync.aligned;\n"
        NB_WG_ONE(8, NB_D, "%4,%5,%6,%7", "%20", "p0") NB_WG_ONE(8, NB_D, "%8,%9,%10,%11", "%21", "p1")
        NB_WG_ONE(8, NB_D, "%12,%13,%14,%15", "%22", "p1") NB_WG_ONE(8, NB_D, "%16,%17,%18,%19", "%23", "p1")
        "wgmma.commit_group.sync.aligned;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : NB_WG_IN
        : "memory");
#undef NB_D
  } else if constexpr (NT == 2) {
#define NB_D "{%0,%1,%2,%3,%4,%5,%6,%7}"
    asm volatile(
        "{\n.reg .pred p0, p1;\nsetp.ne.b32 p0, %28, 0;\nsetp.ne.b32 p1, 1, 0;\nwgmma.fence.sync.aligned;\n"
        NB_WG_ONE(16, NB_D, "%8,%9,%10,%11", "%24", "p0") NB_WG_ONE(16, NB_D, "%12,%13,%14,%15", "%25", "p1")
        NB_WG_ONE(16, NB_D, "%16,%17,%18,%19", "%26", "p1") NB_WG_ONE(16, NB_D, "%20,%21,%22,%23", "%27", "p1")
        "wgmma.commit_group.sync.aligned;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
        : NB_WG_IN
        : "memory");
#undef NB_D
  } else {
    static_assert(NT == 4, "8, 16 or 32 tokens");
#define NB_D "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}"
    asm volatile(
        "{\n.reg .pred p0, p1;\nsetp.ne.b32 p0, %36, 0;\nsetp.ne.b32 p1, 1, 0;\nwgmma.fence.sync.aligned;\n"
        NB_WG_ONE(32, NB_D, "%16,%17,%18,%19", "%32", "p0") NB_WG_ONE(32, NB_D, "%20,%21,%22,%23", "%33", "p1")
        NB_WG_ONE(32, NB_D, "%24,%25,%26,%27", "%34", "p1") NB_WG_ONE(32, NB_D, "%28,%29,%30,%31", "%35", "p1")
        "wgmma.commit_group.sync.aligned;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
          "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : NB_WG_IN
        : "memory");
#undef NB_D
  }
}
#undef NB_WG_ONE
#undef NB_WG_IN
#endif  // NB_WG_BODY

template <class F, int NT, int WG, int AHEAD>
__global__ void __launch_bounds__(WG * 128, WG == 1 ? 4 : WG == 2 ? 2 : 1) gemv_w4_wg_kernel(const __grid_constant__ W4KernelParams p) {
#if NB_WG_BODY
  if (p.pdl_early) pdl_trigger();
  constexpr int G = 4, S = kGemvWgStages;  // units a group (the unroll, the scale sharing); stages
  constexpr int kTile = NT * 1024, kStage = G * kTile;  // bytes: one unit's activations, one group's
  constexpr int kD = NT * 4;                            // accumulator registers a lane
  constexpr bool kScaleA = F::kSG == 2;                 // MXFP4: scales applied to A (exact: powers of two)
  static_assert(AHEAD >= 1 && AHEAD < G, "weights 1..3 units ahead");
  __shared__ __align__(16) uint32_t lut[F::kLut ? 256 * 32 : 4];
  __shared__ float dmap[256];
  __shared__ int is_last;
  extern __shared__ __align__(16) uint8_t wg_smem[];
  const uint32_t xs_base = (smem_addr(wg_smem) + 1023u) & ~1023u;  // the swizzle repeats every 1024 bytes

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int rt_block = blockIdx.x * WG * 4;
  const int rt0 = rt_block + warp;
  const bool rt_ok = rt0 < p.n16;
  const int split = blockIdx.y;
  const int u_begin = static_cast<int>(static_cast<int64_t>(p.ku) * split / p.splits);
  const int u_end = static_cast<int>(static_cast<int64_t>(p.ku) * (split + 1) / p.splits);
  const int n_units = u_end - u_begin;
  const uint64_t pol_w = evict_first_policy();  // weights and scales: read exactly once
  const uint64_t pol_x = evict_last_policy();   // activations: every block reads them

  const uint8_t* wp = p.q + ((static_cast<size_t>(rt_ok ? rt0 : 0) * p.ku + u_begin) * 32 + lane) * 16;
  const uint32_t magic = FmtInt4::kMagic + (p.m >> 30);  // a register, not an immediate
  uint4 wq[G];  // weights of unit i in slot i % G, AHEAD in flight
  uint32_t pre[F::kPre];  // raw scale data of unit (group base + t), one group ahead
#pragma unroll
  for (int i = 0; i < F::kPre; ++i) pre[i] = 0;
  ScaleSrc ssrc = F::src(p, rt_ok ? rt0 : 0, u_begin + t, g);
  const int b0 = (rt0 * 16 + g) * p.ku + u_begin + t;  // canonical NF4 block of (row g, unit u_begin + t)

  auto load_w = [&](int slot, int j) {
    if (rt_ok) wq[slot] = ld_stream_v4(wp + j * 512, pol_w);
  };
  auto load_pre = [&](int base) {
    if (rt_ok && base + t < n_units) F::prefetch(p, ssrc, rt0, b0 + base, pol_w, pre);
    ssrc.a += ssrc.step_a;
    ssrc.b += ssrc.step_b;
  };
  // Activations, a group of G units at a time, in the K order of the packed weights. Those are laid
  // out for mma.sync with a lane's 16-byte activation load as its B fragments: actual column
  // 32h + 8t + 4ss + 2q + e of a unit is row 2t + 8q + e of k16 step 2h + ss of the A fragment (h,
  // ss, q, e in {0, 1}, t in 0..3), so the 4-byte pair (ss, q) of actual 16-byte chunk 4h + t
  // belongs at byte 4t of logical chunk 4h + 2ss + q. A 4 x 4 transpose of words across the 4 lanes
  // that load chunks 4h + 0..3 turns 16-byte loads into 16-byte stores (4-byte cp.async for the
  // same permutation ran at 0.18 of the floor, 16-byte copies in natural order, wrong, at 0.29). Warp w
  // copies token rows w, w + 4 WG, ...: lane l loads chunk l of the row's 4 units (512 bytes).
  // Tiles are K-major, token row r at r * 128 with the 128-byte swizzle (chunk ^ r % 8); rows past
  // M stay unwritten (they only reach columns of D nobody stores).
  constexpr int kXC = NT * 8 > WG * 4 ? NT * 8 / (WG * 4) : 1;  // token rows a warp copies per group
  uint4 xr[kXC];
  auto load_xg = [&](int base) {
    const int units = min(G, n_units - base);
    const uint16_t* src = p.x + static_cast<size_t>(u_begin + base) * 64 + lane * 8;
#pragma unroll
    for (int i = 0; i < kXC; ++i) {
      const int row = warp + i * WG * 4;
      xr[i] = make_uint4(0, 0, 0, 0);
      if (row < p.m && row < NT * 8 && (lane >> 3) < units) xr[i] = ld_keep_v4(src + static_cast<size_t>(row) * p.k, pol_x);
    }
  };
  auto store_xg = [&](int base) {
    const uint32_t dst = xs_base + ((base / G) % S) * kStage;
    const int units = min(G, n_units - base);
    const bool hi2 = (t >> 1) & 1, hi1 = t & 1;
#pragma unroll
    for (int i = 0; i < kXC; ++i) {
      uint32_t v0 = xr[i].x, v1 = xr[i].y, v2 = xr[i].z, v3 = xr[i].w;
      {  // 2 x 2 blocks of words across lanes t, t ^ 2
        const uint32_t r0 = __shfl_xor_sync(0xffffffffu, hi2 ? v0 : v2, 2), r1 = __shfl_xor_sync(0xffffffffu, hi2 ? v1 : v3, 2);
        if (hi2) { v0 = r0; v1 = r1; } else { v2 = r0; v3 = r1; }
      }
      {  // words within each block across lanes t, t ^ 1
        const uint32_t r0 = __shfl_xor_sync(0xffffffffu, hi1 ? v0 : v1, 1), r1 = __shfl_xor_sync(0xffffffffu, hi1 ? v2 : v3, 1);
        if (hi1) { v0 = r0; v2 = r1; } else { v1 = r0; v3 = r1; }
      }
      const int row = warp + i * WG * 4;
      const int lc = (((lane >> 2) & 1) << 2) | t;  // logical chunk 4h + t of the unit
      if (row < p.m && row < NT * 8 && (lane >> 3) < units) {
        const uint32_t a = dst + (lane >> 3) * kTile + row * 128 + ((lc ^ (row & 7)) << 4);
        asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(a), "r"(v0), "r"(v1), "r"(v2), "r"(v3) : "memory");
      }
    }
  };

  // Before the wait: only the weight (the register prologue, the decode table).
  if (n_units > 0) {
#pragma unroll
    for (int i = 0; i < AHEAD; ++i)
      if (i < n_units) load_w(i, i);
    load_pre(0);
  }
  fill_decode_tables<F::kLut>(p, tid, WG * 128, lut, 32, dmap);
  pdl_wait();
  if (n_units > 0) {
    load_xg(0);
    store_xg(0);
  }

  float acc[kD];
#pragma unroll
  for (int i = 0; i < kD; ++i) acc[i] = 0.0f;
  float d[kD];  // NF4 / INT4: the unit's fresh accumulator
  const uint32_t lut_lane = smem_addr(lut) + lane * 4;
  const uint64_t desc0 = wg_desc_sw128(xs_base);

  for (int base = 0; base < n_units; base += G) {
    // This group's stage is written (the barrier; it also publishes the decode table the first
    // time), and every warp is done with the other stage (each unit waits for its own wgmma), which
    // takes the next group at the end of this one; its loads go out now.
    fence_proxy_async_smem();
    __syncthreads();
    const bool next = base + G < n_units;
    if (next) load_xg(base + G);
    uint32_t scl[F::kScl];
    F::decode(p, dmap, rt0, pre, scl, false);
    load_pre(base + G);
    const uint64_t desc_s = desc0 + ((((base / G) % S) * kStage) >> 4);
#pragma unroll
    for (int j = 0; j < G; ++j) {
      const int i = base + j;
      if (i >= n_units) break;  // uniform over the block
      if (i + AHEAD < n_units) load_w((j + AHEAD) % G, j + AHEAD);
      uint32_t su[F::kScl];
#pragma unroll
      for (int s = 0; s < F::kScl; ++s) su[s] = F::lane_uniform(p, s) ? scl[s] : __shfl_sync(0xffffffffu, scl[s], j, 4);
      float sc[F::kSG][2];
      uint32_t zm[2];
      F::unpack(p, su, sc, zm);
      uint32_t ab[4][4];
      const uint32_t wd[4] = {wq[j].x, wq[j].y, wq[j].z, wq[j].w};
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) F::codes(wd[kk], F::kLut ? lut_lane : magic, zm, ab[kk]);
      if constexpr (kScaleA) {
        // bf16x2 of the scale of rows g (registers 0, 2) and g + 8 (1, 3) per column half: the
        // fp32 power of two's top half, exact (subnormal 2^-127 and NaN included).
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint32_t s0 = __float_as_uint(sc[h][0]) >> 16, s1 = __float_as_uint(sc[h][1]) >> 16;
          const uint32_t w0 = s0 | (s0 << 16), w1 = s1 | (s1 << 16);
#pragma unroll
          for (int kk = 2 * h; kk < 2 * h + 2; ++kk)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
              __nv_bfloat162 v = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&ab[kk][r]),
                                         *reinterpret_cast<const __nv_bfloat162*>((r & 1) ? &w1 : &w0));
              ab[kk][r] = *reinterpret_cast<uint32_t*>(&v);
            }
        }
      }
      // Every warp issues the wgmma, rows or not (a warpgroup past the last row tile computes
      // garbage nobody stores): wgmma in a branch ptxas cannot prove uniform is serialized.
      uint64_t desc[4];
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) desc[kk] = desc_s + ((j * kTile + kk * 32) >> 4);
      // Every warp issues the wgmma, rows or not (a warpgroup past the last row tile computes
      // garbage nobody stores): wgmma in a branch ptxas cannot prove uniform is serialized. And
      // each unit waits for its own wgmma before the next unit's decode: with one unit in flight
      // (wait_group 1, two A and D buffers) ptxas serialized them anyway (C7513/C7514).
      if constexpr (kScaleA) {
        wgmma_unit<NT, false>(acc, ab, desc);
        wgmma_wait<0>();
        keep_f(acc);
      } else {
        wgmma_unit<NT, true>(d, ab, desc);
        wgmma_wait<0>();
        keep_f(d);
#pragma unroll
        for (int q = 0; q < NT; ++q) {
          acc[4 * q] = fmaf(d[4 * q], sc[0][0], acc[4 * q]);
          acc[4 * q + 1] = fmaf(d[4 * q + 1], sc[0][0], acc[4 * q + 1]);
          acc[4 * q + 2] = fmaf(d[4 * q + 2], sc[0][1], acc[4 * q + 2]);
          acc[4 * q + 3] = fmaf(d[4 * q + 3], sc[0][1], acc[4 * q + 3]);
        }
      }
    }
    wp += G * 512;
    if (next) store_xg(base + G);
  }
  if (!p.pdl_early) pdl_trigger();

  if (rt_ok) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const float v[4] = {acc[4 * nt], acc[4 * nt + 1], acc[4 * nt + 2], acc[4 * nt + 3]};
      if (p.splits == 1) {
        store_fragment(p, rt0, g, nt * 8 + 2 * t, v);
        continue;
      }
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int row = rt0 * 16 + g + 8 * (c >> 1), tok = nt * 8 + 2 * t + (c & 1);
        if (row < p.n && tok < p.m) p.ws[static_cast<size_t>(split) * p.m * p.n + static_cast<size_t>(tok) * p.n + row] = v[c];
      }
    }
  }
  if (p.splits == 1) return;
  splitk_merge(p, rt_block * 16, WG * 64, tid, WG * 128, &is_last);
#elif defined(__CUDA_ARCH__)
  __trap();  // never launched: the host picks `wg` configurations only on sm_90 (gemv_w4_launch)
#endif
}

}  // namespace nibble::cuda

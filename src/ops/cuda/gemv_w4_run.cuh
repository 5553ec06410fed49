// The persistent "run" variant of the 4-bit GEMV for M <= 8 (configurations with `run` > 0).
// Included by gemv_w4.cuh after gemv_w4_kernel: it reuses W4KernelParams, the format policies
// (FmtNf4, FmtInt4, FmtMxfp4), the load helpers and the PDL rules of that file.
//
// Why (docs/kernels.md, "Session 4"): bench/skeleton_probe.cu times kernels that only read a layer's
// weights, at the 15 layer sizes and the way the benchmark times the GEMV. One persistent wave of
// 16 warps per SM, each warp streaming one contiguous run 4 units ahead, reads at 0.83 of the
// copy-rate floor (geomean); many short-lived warps (the v4 kernel's shape) at 0.69-0.79, and 32
// warps per SM 4 units ahead at 0.68. This kernel is the first of those skeletons with the GEMV's
// work inside:
//  - one wave: `run` warps per SM (W-warp blocks), each block alive for the whole GEMV, its decode
//    table filled once;
//  - the packed weight [n16][ku][32][16] is one contiguous stream of n16 * ku units; the warps split
//    it into contiguous runs of whole groups of 4 units (ku % 4 == 0, so row-tile boundaries fall
//    between groups and the unrolled loop body never sees one); weights run AHEAD units ahead in a
//    ring of 4 or 8 register slots, straight across row tiles;
//  - scale data as in gemv_w4_kernel (lane t of lane group g loads and decodes unit t of a group
//    for its rows, and each unit takes it by a width-4 shuffle) but two groups ahead: at 16 warps
//    per SM a group is about one DRAM round trip of a warp's time; activations through L1, XAHEAD
//    units ahead, their pointer wrapping to column 0 at a row tile's end;
//  - a row tile the run covers whole is written directly; a tile cut at a run's ends goes as an
//    fp32 partial to one of the warp's two workspace slots, and the contributor whose arrival
//    completes the tile adds all contributors' partials in warp order (deterministic), writes y
//    and resets the tile's counter. No warp waits for another.
// Measured (H200, M = 1): NF4 gate|up layers at 0.59-0.75 of the floor against the v4 kernel's
// 0.53-0.65 (MXFP4 0.60-0.77 against 0.56-0.72), but below v4 on the small layers, where the cut tiles' merge (a fence, an
// atomic and an L2 read at the end) is a large part of a 3-7 us kernel; INT4 is faster on the v4
// kernel everywhere. So it is the default only on the large layers (gemv_run_wanted, w4_pack.cpp).
// `bulk` (session 15): the weights through the bulk copy engine into a shared-memory ring instead of
// registers. A bare read that way reaches 0.96 of the floor where registers reach 0.83
// (bench/skeleton_probe.cu), but this kernel got slower with it (2 stages -5 %, 3 and 4 more): it is
// not short of bytes in flight, and the ring's shared-memory reads add to the busiest pipe.
#pragma once

namespace nibble::cuda {

// Runs: the G-unit groups of the weight, split over T warps as groups [Q * w / T, Q * (w + 1) / T)
// (T <= Q, so no run is empty). The warp whose run holds unit c: the largest w with Q * w / T <= c / G.
__device__ __forceinline__ int run_owner(int64_t c, int64_t groups, int warps) {
  return static_cast<int>(((c / 4 + 1) * warps - 1) / groups);
}
__device__ __forceinline__ int64_t run_begin(int w, int64_t groups, int warps) { return 4 * (groups * w / warps); }

// The wide decode table (GemvConfig::wide): entry b for lane l at base + b * 256 + l * 4, base a
// multiple of 64 KB. Byte 1 of base + l * 4 is then zero, and one PRMT that puts code byte r of the
// word there (keeping bytes 0, 2, 3 of the lane's base) is the lookup's address: PRMT + LDS, where
// the 128-byte stride needs PRMT + a shift-and-add + LDS. (ptxas adds a shared symbol's base to
// any offset computed from it, session 7; here the address is one register from the PRMT, so there
// is nothing to add.) Lanes still read their own bank: (b * 64 + l) % 32 = l.
template <int R>  // address bytes: base 0, word R, base 2, base 3 (selector an immediate)
__device__ __forceinline__ uint32_t wide_lut_lookup(uint32_t word, uint32_t lane_base) {
  uint32_t a;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(a) : "r"(word), "r"(lane_base), "n"(0x7604 | (R << 4)));
  return lds_u32(a);
}
__device__ __forceinline__ void wide_lut_codes(uint32_t word, uint32_t lane_base, uint32_t (&a)[4]) {
  a[0] = wide_lut_lookup<0>(word, lane_base);
  a[1] = wide_lut_lookup<1>(word, lane_base);
  a[2] = wide_lut_lookup<2>(word, lane_base);
  a[3] = wide_lut_lookup<3>(word, lane_base);
}

// The bulk ring's stages (GemvConfig::bulk): stage s of warp w is slot w * S + s of 2 KB (one group).
// Without the wide table the slots lie back to back from the dynamic base (128-byte aligned); with
// it they fill the space around the table's 64 KB: from the base up to the table, then above it.
struct BulkSlots {
  uint32_t base, table, below;  // first slot, the table's address, slots below it
  __device__ __forceinline__ uint32_t at(int slot) const {
    return slot < static_cast<int>(below) ? base + slot * 2048u : table + 65536u + (slot - below) * 2048u;
  }
};

template <class F, int W, int AHEAD, int XAHEAD, int WARPS_PER_SM, int WIDE, int BULK>
__global__ void __launch_bounds__(W * 32, WARPS_PER_SM / W) gemv_w4_run_kernel(const __grid_constant__ W4KernelParams p) {
  if (p.pdl_early) pdl_trigger();
  constexpr int G = 4;                     // units per group: the unroll, the scale sharing
  constexpr int R = AHEAD < G ? G : 2 * G;  // weight ring slots (unit i of the run in slot i % R)
  // BULK > 0: weights go through the bulk copy engine instead, BULK stages of one group a warp in
  // shared memory (lane 0 copies group q + BULK into the stage group q leaves; AHEAD is unused).
  constexpr int S = BULK;
  constexpr bool kBulk = S > 0;
  static_assert(AHEAD >= 1 && AHEAD < R && XAHEAD >= 1 && XAHEAD < G, "weights 1..7, activations 1..3 units ahead");
  constexpr int XR = XAHEAD == 1 ? 2 : G;  // activation ring (unit i in slot i % XR)
  constexpr bool kSplitHalves = F::kSG == 2;  // MXFP4: a scale per column half of the unit
  constexpr bool kWide = WIDE != 0 && F::kLut;
  static_assert(!kWide || W == WARPS_PER_SM, "the wide table takes 128 KB: one block a SM");
  __shared__ __align__(16) uint32_t lut[F::kLut && !kWide ? 256 * 32 : 4];
  extern __shared__ __align__(16) uint4 run_smem[];  // kWide: the table's 128 KB window
  __shared__ float dmap[256];
  __shared__ __align__(8) uint64_t bulk_bar[kBulk ? W * S : 1];  // one mbarrier a stage

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int ku = p.ku;  // a multiple of G (host)
  const int64_t groups = static_cast<int64_t>(p.n16) * (ku / G);
  const int n_warps = static_cast<int>(min(static_cast<int64_t>(gridDim.x) * W, groups));
  const int gw = blockIdx.x * W + warp;
  const bool active = gw < n_warps;  // warp-uniform; idle warps only help fill the table
  const int64_t c0 = active ? run_begin(gw, groups, n_warps) : 0;
  const int n = active ? static_cast<int>(run_begin(gw + 1, groups, n_warps) - c0) : 0;  // units, a multiple of G
  const uint64_t pol_w = evict_first_policy();  // weights and scales: read exactly once
  const uint64_t pol_x = evict_last_policy();   // activations: every warp reads them

  int rt = static_cast<int>(c0 / ku), u = static_cast<int>(c0 % ku);  // the current group's first unit
  const int rt_first = rt;
  const bool aligned = u == 0;  // the run starts at its first tile's unit 0
  const uint8_t* wp = p.q + (static_cast<size_t>(c0) * 32 + lane) * 16;  // the current group's first unit
  // Activations: token g, columns 32h + 8t .. + 8 of the unit, loaded only by lanes whose token is
  // below M (x_live; the others keep zeros: their B columns feed D columns nobody stores). At M = 1
  // this takes a unit's activation loads from 8 L1 wavefronts to 2 (the same row asked 8 times;
  // gemv_w4_kernel's x_live has the measurements). Table formats only, as there: INT4's run kernels
  // spilled 8 bytes with it (session 14).
  const bool x_live = !F::kLut || g < p.m;
  const uint16_t* const xrow = p.x + static_cast<size_t>(min(g, p.m - 1)) * p.k + 8 * t;
  const uint16_t* xp = xrow + u * 64;
  const uint32_t magic = FmtInt4::kMagic + (p.m >> 30);  // a register, not an immediate

  uint4 wq[kBulk ? 1 : R];
  uint4 xf[XR][2];
#pragma unroll
  for (int i = 0; i < XR; ++i) xf[i][0] = xf[i][1] = make_uint4(0, 0, 0, 0);
  // Raw scale data of unit t of a group, two groups ahead (slot = group parity): at 16 warps per
  // SM a warp spends ~1 us on a group at the floor, about one DRAM round trip under load.
  uint32_t pre[2][F::kPre];
#pragma unroll
  for (int s = 0; s < 2; ++s)
#pragma unroll
    for (int i = 0; i < F::kPre; ++i) pre[s][i] = 0;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};

  // Scale data: (srt, su) is the group load_pre loads next (into slot `slot`); pre_left counts them.
  // Every format's scale data lies in unit order (row tile major), so the run's sources only move
  // forward by their step a group; only the NF4 nested absmax index (by row, then unit: b0) jumps
  // at a tile's end. Incrementing instead of recomputing saves ~20 instructions a group.
  int srt = rt, su = u, pre_left = n / G;
  ScaleSrc sp = F::src(p, rt, u + t, g);
  int b0 = (rt * 16 + g) * ku + u + t;
  auto load_pre = [&](int slot) {
    if (pre_left-- > 0) {
      F::prefetch(p, sp, srt, b0, pol_w, pre[slot]);
      sp.a += sp.step_a;
      sp.b += sp.step_b;
      b0 += G;
      su += G;
      if (su == ku) {
        su = 0;
        ++srt;
        b0 += 15 * ku;
      }
    }
  };
  auto load_x = [&](int slot, const uint16_t* src) {
    if (!x_live) return;
    xf[slot][0] = ld_keep_v4(src, pol_x);
    xf[slot][1] = ld_keep_v4(src + 32, pol_x);
  };

  // The table: the static one, or the wide one at the first 64 KB boundary of the dynamic window.
  uint32_t* table = lut;
  const uint32_t dyn = smem_addr(run_smem);
  const uint32_t table_at = (dyn + 0xFFFFu) & ~0xFFFFu;
  if constexpr (kWide) table = reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(run_smem) + (table_at - dyn));
  // The bulk ring: this warp's stages, their barriers, the next group to copy (q_issue of n / G).
  const BulkSlots slots{(dyn + 127u) & ~127u, table_at, kWide ? (table_at - ((dyn + 127u) & ~127u)) / 2048u : 1u << 30};
  const uint32_t bar0 = smem_addr(&bulk_bar[0]) + warp * S * 8;
  const char* bulk_src = reinterpret_cast<const char*>(p.q) + static_cast<size_t>(c0) * 512;
  int q_issue = 0;
  auto bulk_issue = [&](int stage) {  // lane 0: group q_issue into `stage`
    if (lane == 0 && q_issue < n / G)
      bulk_copy_g2s(slots.at(warp * S + stage), bulk_src + static_cast<size_t>(q_issue) * 2048, 2048, bar0 + stage * 8, pol_w);
    ++q_issue;
  };
  // Before pdl_wait() only the weight: the first units (or groups), the first group's scale data, the table.
  if constexpr (kBulk) {
    if (lane == 0) {
#pragma unroll
      for (int i = 0; i < S; ++i) mbar_init(bar0 + i * 8, 1);
      mbar_init_fence();
    }
    __syncwarp();
#pragma unroll
    for (int i = 0; i < S; ++i) bulk_issue(i);
  } else {
#pragma unroll
    for (int i = 0; i < AHEAD; ++i)
      if (i < n) wq[i] = ld_stream_v4(wp + i * 512, pol_w);
  }
  load_pre(0);
  load_pre(1);
  fill_decode_tables<F::kLut>(p, tid, W * 32, table, kWide ? 64 : 32, dmap);
  const uint32_t lut_lane = smem_addr(table) + lane * 4;  // this lane's copy of entry 0

  // From here on the activations (the previous kernel may have written them), and any write.
  pdl_wait();
  if (n > 0) {
#pragma unroll
    for (int i = 0; i < XAHEAD; ++i) load_x(i, xp + i * 64);
  }
  __syncthreads();

  // A tile's finished D fragment (rows g, g + 8; tokens 2t, 2t + 1) into y (with the epilogue).
  auto store_tile = [&](int tile, const float (&v)[4]) { store_fragment(p, tile, g, 2 * t, v); };
  // The D fragment of the current tile: written directly (the run covers it whole) or as slot 0 / 1.
  auto flush = [&](bool whole, int slot) {
    if (whole) {
      store_tile(rt, acc);
    } else {
      // ws[((warp * 2 + slot) * 4 + c) * 32 + lane]; only tokens < M are written and read.
      float* const dst = p.ws + (static_cast<size_t>(gw) * 2 + slot) * 4 * 32 + lane;
#pragma unroll
      for (int c = 0; c < 4; ++c)
        if (2 * t + (c & 1) < p.m) dst[c * 32] = acc[c];
    }
    acc[0] = acc[1] = acc[2] = acc[3] = 0.0f;
  };

  int left = n;  // units left from the current group's first
  int stage = 0;  // kBulk: the current group's stage, and the parity of its barrier's current phase
  uint32_t phase = 0;
  // One group of G units; P: its parity (the ring slot of unit j is (P * G + j) % R, its scale
  // data slot P).
  auto group = [&](auto parity) {
    constexpr int P = decltype(parity)::value;
    uint32_t scl[F::kScl];
    F::decode(p, dmap, rt, pre[P], scl, false);
    load_pre(P);  // the group after the next
    const uint16_t* const xnext = u + G == ku ? xrow : xp + G * 64;  // the next group's activations
    uint4 wstage[kBulk ? G : 1];  // kBulk: the group's weights, read from its stage at once
    if constexpr (kBulk) {
      mbar_wait(bar0 + stage * 8, phase);
      const uint32_t at = slots.at(warp * S + stage) + lane * 16;
#pragma unroll
      for (int j = 0; j < G; ++j) wstage[j] = lds_v4(at + j * 512);
    }
#pragma unroll
    for (int j = 0; j < G; ++j) {
      if constexpr (!kBulk)
        if (j + AHEAD < left) wq[(P * G + j + AHEAD) % R] = ld_stream_v4(wp + (j + AHEAD) * 512, pol_w);
      if (j + XAHEAD < left) load_x((j + XAHEAD) % XR, j + XAHEAD < G ? xp + (j + XAHEAD) * 64 : xnext + (j + XAHEAD - G) * 64);
      uint32_t su_[F::kScl];
#pragma unroll
      for (int s = 0; s < F::kScl; ++s)
        su_[s] = F::lane_uniform(p, s) ? scl[s] : __shfl_sync(0xffffffffu, scl[s], j, 4);  // lane 4g + j
      float sc[F::kSG][2];
      uint32_t zm[2];
      F::unpack(p, su_, sc, zm);
      const uint4 w4 = kBulk ? wstage[j] : wq[(P * G + j) % R];
      const uint32_t wd[4] = {w4.x, w4.y, w4.z, w4.w};
      float d[4];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if (h == 0 || kSplitHalves) d[0] = d[1] = d[2] = d[3] = 0.0f;
#pragma unroll
        for (int ss = 0; ss < 2; ++ss) {
          uint32_t a[4];
          if constexpr (kWide)
            wide_lut_codes(wd[2 * h + ss], lut_lane, a);
          else
            F::codes(wd[2 * h + ss], F::kLut ? lut_lane : magic, zm, a);
          const uint4 xv = xf[j % XR][h];
          mma_bf16_16816(d, a, ss == 0 ? xv.x : xv.z, ss == 0 ? xv.y : xv.w);
        }
        if (h == 1 || kSplitHalves) {
          const int sg = F::kSG == 2 ? h : 0;
          acc[0] = fmaf(d[0], sc[sg][0], acc[0]);
          acc[1] = fmaf(d[1], sc[sg][0], acc[1]);
          acc[2] = fmaf(d[2], sc[sg][1], acc[2]);
          acc[3] = fmaf(d[3], sc[sg][1], acc[3]);
        }
      }
    }
    if constexpr (kBulk) {  // every lane has used its words of the stage: hand it to the next group
      __syncwarp();
      bulk_issue(stage);
      if (++stage == S) {
        stage = 0;
        phase ^= 1u;
      }
    }
    wp += G * 512;
    left -= G;
    u += G;
    if (u == ku) {  // the tile ends here: whole unless it is the run's first and the run began inside it
      const bool whole = aligned || rt != rt_first;
      flush(whole, 0);
      u = 0;
      ++rt;
      xp = xrow;
    } else {
      xp += G * 64;
    }
  };
  while (left > 0) {
    group(std::integral_constant<int, 0>{});
    if (left > 0) group(std::integral_constant<int, 1>{});
  }
  if (u != 0) flush(false, rt == rt_first ? 0 : 1);  // the run ends inside a tile
  if (!p.pdl_early) pdl_trigger();

  // ---- the cut tiles: arrive; the last contributor to arrive adds them in warp order ----
  // (rt, u): the unit after the run's last. The first tile is partial if the run starts inside
  // it, or ends inside it; a later last tile if the run ends inside it. Idle warps: none.
  const int part0 = n > 0 && (!aligned || (rt == rt_first && u != 0)) ? rt_first : -1;
  const int part1 = n > 0 && u != 0 && rt != rt_first ? rt : -1;
  if (part0 < 0 && part1 < 0) return;  // warp-uniform
  __threadfence();  // this lane's partials visible device-wide before the warp's arrival
  __syncwarp();
#pragma unroll 1
  for (int s = 0; s < 2; ++s) {
    const int tile = s == 0 ? part0 : part1;
    if (tile < 0) continue;
    int old = 0;
    if (lane == 0) old = atomicAdd(p.counters + tile, 1);
    old = __shfl_sync(0xffffffffu, old, 0);
    const int64_t t0 = static_cast<int64_t>(tile) * ku;  // the tile's units [t0, t0 + ku)
    const int w_first = run_owner(t0, groups, n_warps);
    const int w_last = run_owner(t0 + ku - 1, groups, n_warps);
    if (old != w_last - w_first) continue;  // not the last of its w_last - w_first + 1 contributors
    __threadfence();
    // The first contributor holds the tile in slot 0 if it is its first tile (its run starts at
    // the tile's unit 0), else in slot 1; every later contributor's run starts inside it: slot 0.
    const int slot_first = run_begin(w_first, groups, n_warps) >= t0 ? 0 : 1;
    // The contributors' partials, 8 at a time: all loads of a batch in flight together (one L2
    // round trip, not one per contributor: this is the small layers' tail), added in warp order.
    float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    constexpr int kBatch = 8;
#pragma unroll 1
    for (int w0 = w_first; w0 <= w_last; w0 += kBatch) {
      float part[kBatch][4];
#pragma unroll
      for (int i = 0; i < kBatch; ++i) {
        const int w = w0 + i;
        const float* src = p.ws + (static_cast<size_t>(min(w, w_last)) * 2 + (w == w_first ? slot_first : 0)) * 4 * 32 + lane;
#pragma unroll
        for (int c = 0; c < 4; ++c) part[i][c] = w <= w_last && 2 * t + (c & 1) < p.m ? __ldcg(src + c * 32) : 0.0f;
      }
#pragma unroll
      for (int i = 0; i < kBatch; ++i)
#pragma unroll
        for (int c = 0; c < 4; ++c) v[c] += part[i][c];
    }
    store_tile(tile, v);
    if (lane == 0) p.counters[tile] = 0;  // ready for the next launch (it touches it only after pdl_wait)
  }
}

// Host side: one wave of `run` warps per SM (fewer blocks when the weight has fewer groups than
// that wave has warps); the workspace holds two partial tiles per warp, the counters one per tile.
template <class F>
Status gemv_w4_run_launch(void (*kernel)(W4KernelParams), int config, W4KernelParams& p, Stream& s) {
  const GemvConfig& c = kGemvConfigs[config];
  const int64_t groups = static_cast<int64_t>(p.n16) * (p.ku / 4);
  if (groups == 0) {  // K = 0: y = 0 (and act(0) * 0 = 0)
    return s.memset(p.y, 0, static_cast<size_t>(p.m) * (p.glu ? p.n / 2 : p.n) * sizeof(uint16_t));
  }
  const int64_t wave = static_cast<int64_t>(c.run / c.warps) * s.info().sm_count;
  const int blocks = static_cast<int>(std::clamp<int64_t>(groups / c.warps, 1, wave));
  p.splits = 1;
  const size_t ws_bytes = static_cast<size_t>(blocks) * c.warps * 2 * 4 * 32 * sizeof(float);
  NB_TRY(s.scratch(ws_bytes, static_cast<size_t>(p.n16), &p.ws, &p.counters));
  const size_t smem = gemv_run_smem_bytes(c, F::kLut);
  if (smem > 0) {
    // Above the 48 KB default: asked once per kernel (one GPU model per process, as the v4 launch).
    static std::array<std::atomic<bool>, kGemvConfigCount> allowed{};
    if (!allowed[config].load(std::memory_order_relaxed)) {
      NB_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
      allowed[config].store(true, std::memory_order_relaxed);
    }
  }
  return launch_pdl(F::kName, kernel, dim3(blocks), dim3(c.warps * 32), smem, s, p);
}

}  // namespace nibble::cuda

// The persistent streaming variant of the 4-bit GEMV (configurations with `stream` = 1). Included
// by gemv_w4.cuh after gemv_w4_kernel: it reuses W4KernelParams, the format policies (FmtNf4,
// FmtInt4, FmtMxfp4), lut_codes, the load helpers and the PDL rules of that file.
//
// Why (docs/kernels.md, "Status after session 3"): with the arithmetic ablated the v4 skeleton
// still ran at about half the floor, while a kernel that only streams one long contiguous run per
// warp in one wave of blocks (bench/stream_probe.cu) reads at the copy rate. So this kernel has
// that skeleton:
//  - one wave of blocks (resident blocks per SM x SMs, fewer when the weight is small: at least
//    ~8 chunks a warp), each block alive for the whole GEMV, its decode table filled once;
//  - the packed weight [n16][ku][32][16] is one contiguous stream of C = n16 * ku chunks of 512
//    bytes (chunk c = row tile c / ku, unit c % ku); warp w of T streams chunks
//    [C * w / T, C * (w + 1) / T), AHEAD chunks (weights and their scale data) ahead in a ring of
//    4 register slots, the activations of the next chunk one ahead;
//  - every lane loads and decodes its own rows' scales per chunk (no 4-lane sharing);
//  - a row tile the run covers from its first unit to its last is written directly; the (at most
//    two) row tiles cut at the run's ends go as fp32 partials to the warp's two workspace slots,
//    and the contributor whose arrival completes a tile adds all its contributors' slots in warp
//    order (deterministic: the same sum whoever arrives last), writes y and resets the counter.
// No warp ever waits for another (no spinning), so blocks that are not yet resident (a previous
// kernel still running under PDL) cannot deadlock the grid.
#pragma once

namespace nibble::cuda {

// The warp that streams chunk c when C chunks are split among T warps as [C * w / T, C * (w + 1) / T)
// (T <= C: every run non-empty): the largest w with C * w / T <= c, i.e. C * w < (c + 1) * T.
__device__ __forceinline__ int stream_owner(int64_t c, int64_t chunks, int warps) {
  return static_cast<int>(((c + 1) * warps - 1) / chunks);
}
__device__ __forceinline__ int64_t stream_run_begin(int w, int64_t chunks, int warps) {
  return chunks * w / warps;
}

// Resident warps per SM the register budget is set for: 24 at M <= 8 (80 registers; with the 33 KB
// table, 6 blocks of 4 warps is also what shared memory allows), 16 above (128 registers: the
// accumulators, MMA fragments and activation ring grow with the n-tiles).
template <int NT, int W>
constexpr int stream_min_blocks() {
  return (NT == 1 ? 24 : 16) / W > 0 ? (NT == 1 ? 24 : 16) / W : 1;
}

template <class F, int NT, int W, int AHEAD>
__global__ void __launch_bounds__(W * 32, stream_min_blocks<NT, W>())
    gemv_w4_stream_kernel(const __grid_constant__ W4KernelParams p) {
  constexpr int G = 4;  // ring slots = the main loop's unroll: chunk i in slot i % G, a compile-time index
  static_assert(AHEAD >= 1 && AHEAD < G, "weights run 1..3 chunks ahead");
  constexpr bool kSplitHalves = F::kSG == 2;  // MXFP4: a scale per column half of the unit
  constexpr int kVals = NT * 4;               // accumulator values per lane
  // lut[b * 32 + l]: bf16x2 of (code[b & 15], code[b >> 4]) for lane l.
  __shared__ __align__(16) uint32_t lut[F::kLut ? 256 * 32 : 4];
  __shared__ float dmap[256];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int ku = p.ku;
  const int64_t chunks = static_cast<int64_t>(p.n16) * ku;
  // Warps past the chunk count (a single block on a tiny weight) stay idle: every run is non-empty.
  const int n_warps = static_cast<int>(min(static_cast<int64_t>(gridDim.x) * W, chunks));
  const int gw = blockIdx.x * W + warp;
  const bool active = gw < n_warps;  // warp-uniform
  const int64_t c0 = active ? stream_run_begin(gw, chunks, n_warps) : 0;
  const int n = active ? static_cast<int>(stream_run_begin(gw + 1, chunks, n_warps) - c0) : 0;  // chunks of this run
  const uint64_t pol_w = evict_first_policy();  // weights and scales: read exactly once

  // Two positions walk the run: (rt, u) the chunk being computed, (lrt, lu) the next chunk whose
  // weights and scales are loaded.
  int rt = static_cast<int>(c0 / ku), u = static_cast<int>(c0 % ku);  // idle warps: c0 = 0 (ku >= 1: host)
  int lrt = rt, lu = u;
  const int rt_first = rt;     // the run's first row tile (its partial, if any, goes to slot 0)
  const bool aligned = u == 0;  // the run starts at its first tile's unit 0
  const uint8_t* wp = p.q + (static_cast<size_t>(c0) * 32 + lane) * 16;  // this lane's 16 bytes of chunk (group base)
  // Activation fragments: token nt*8 + g, columns 32h + 8t .. + 8 of the unit (rows past M read row
  // M - 1: garbage in output columns nobody reads).
  // One pointer and 32-bit row offsets (M * K < 2^31): 4 registers fewer at M <= 32.
  const uint16_t* const xb = p.x + 8 * t;
  int xo[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) xo[nt] = min(nt * 8 + g, p.m - 1) * p.k;
  const uint32_t magic = FmtInt4::kMagic + (p.m >> 30);  // a register, not an immediate (one LOP3 per word)

  uint4 wq[G];              // weights of chunk i in slot i % G, AHEAD in flight
  uint32_t pre[G][F::kPre];  // raw scale data of chunk i in slot i % G, AHEAD in flight
  // Activations of chunk i in slot i % XR, loaded XR - 1 chunks ahead: one ahead up to M = 16; at
  // M <= 32 (a second slot would be 32 more registers) at the chunk's start, an L1 hit, issued
  // before its scale decode and table lookups.
  constexpr int XR = NT >= 4 ? 1 : 2;
  uint4 xf[XR][NT][2];
  float acc[NT][4];
#pragma unroll
  for (int s = 0; s < G; ++s)
#pragma unroll
    for (int i = 0; i < F::kPre; ++i) pre[s][i] = 0;  // decode reads words the format does not load
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[nt][c] = 0.0f;

  // Weights and scale data of the chunk at (lrt, lu) into `slot`, the weights from wp + j * 512
  // (j: chunk index relative to the group base, a compile-time constant at every call).
  auto load_w = [&](int slot, int j) {
    wq[slot] = ld_stream_v4(wp + j * 512, pol_w);
    const ScaleSrc sp = F::src(p, lrt, lu, g);
    const int b0 = (lrt * 16 + g) * ku + lu;  // canonical NF4 block of (row g of the tile, unit lu)
    F::prefetch(p, sp, b0, pol_w, pre[slot]);
    if (++lu == ku) {
      lu = 0;
      ++lrt;
    }
  };
  // Activations of unit xu (through L1: every warp of the SM reads them).
  auto load_x = [&](int slot, int xu) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const uint16_t* const src = xb + (xo[nt] + xu * 64);
      xf[slot][nt][0] = __ldg(reinterpret_cast<const uint4*>(src));
      xf[slot][nt][1] = __ldg(reinterpret_cast<const uint4*>(src + 32));
    }
  };

  // Before pdl_wait() only the weight is read (no earlier kernel writes it): the first chunks'
  // weights and scales, the decode table, the dmap.
#pragma unroll
  for (int i = 0; i < AHEAD; ++i)
    if (i < n) load_w(i, i);
  if constexpr (F::kLut) {
    for (int b = tid; b < 256; b += W * 32) {
      // Thread b writes the 32 copies of entry b as 8 16-byte stores, rotated so that the 8
      // lanes of a store phase hit different banks.
      const uint32_t v = pack_bf16x2(p.code[b & 15], p.code[b >> 4]);
      const uint4 v4 = make_uint4(v, v, v, v);
#pragma unroll
      for (int c = 0; c < 8; ++c) reinterpret_cast<uint4*>(lut)[b * 8 + ((c + b) & 7)] = v4;
    }
  }
  if (p.dmap != nullptr)
    for (int i = tid; i < 256; i += W * 32) dmap[i] = p.dmap[i];

  // From here on the activations (the previous kernel may have written them), and any write.
  pdl_wait();
  if (XR == 2 && n > 0) load_x(0, u);
  __syncthreads();

  if (n > 0) {
    const uint32_t lut_lane = smem_addr(lut) + lane * 4;
    // rem: chunks left from the group's first (one register where base and n would take two).
    for (int rem = n; rem > 0; rem -= G) {
#pragma unroll
      for (int j = 0; j < G; ++j) {
        if (j >= rem) break;  // uniform over the warp; chunk i = n - rem + j
        if (j + AHEAD < rem) load_w((j + AHEAD) % G, j + AHEAD);
        if (j + XR - 1 < rem) load_x((j + XR - 1) % XR, XR == 1 ? u : u + 1 == ku ? 0 : u + 1);

        uint32_t scl[F::kScl];
        F::decode(p, dmap, pre[j], scl, false);
        float sc[F::kSG][2];
        uint32_t zm[2];
        F::unpack(p, scl, sc, zm);
        const uint32_t wd[4] = {wq[j].x, wq[j].y, wq[j].z, wq[j].w};
        float d[NT][4];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          if (h == 0 || kSplitHalves) {
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) d[nt][0] = d[nt][1] = d[nt][2] = d[nt][3] = 0.0f;
          }
#pragma unroll
          for (int ss = 0; ss < 2; ++ss) {
            uint32_t a[4];
            F::codes(wd[2 * h + ss], F::kLut ? lut_lane : magic, zm, a);
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
              const uint4 xv = xf[j % XR][nt][h];
              mma_bf16_16816(d[nt], a, ss == 0 ? xv.x : xv.z, ss == 0 ? xv.y : xv.w);
            }
          }
          if (h == 1 || kSplitHalves) {
            const int sg = F::kSG == 2 ? h : 0;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
              acc[nt][0] = fmaf(d[nt][0], sc[sg][0], acc[nt][0]);
              acc[nt][1] = fmaf(d[nt][1], sc[sg][0], acc[nt][1]);
              acc[nt][2] = fmaf(d[nt][2], sc[sg][1], acc[nt][2]);
              acc[nt][3] = fmaf(d[nt][3], sc[sg][1], acc[nt][3]);
            }
          }
        }

        // Flush at the end of a row tile or of the run.
        const bool tile_end = u == ku - 1;
        if (tile_end || j == rem - 1) {
          if (tile_end && (aligned || rt != rt_first)) {
            // The whole tile is this warp's: D fragment (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1).
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
              for (int c = 0; c < 4; ++c) {
                const int row = rt * 16 + g + 8 * (c >> 1), tok = nt * 8 + 2 * t + (c & 1);
                if (row < p.n && tok < p.m)
                  p.y[static_cast<size_t>(tok) * p.n + row] = __bfloat16_as_ushort(__float2bfloat16_rn(acc[nt][c]));
              }
          } else {
            // Cut at a run end: the partial goes to slot 0 (first tile) or 1 (last tile),
            // ws[((warp * 2 + slot) * kVals + v) * 32 + lane]. Only tokens < M are written and read.
            const int slot = rt == rt_first ? 0 : 1;
            float* const dst = p.ws + (static_cast<size_t>(gw) * 2 + slot) * kVals * 32 + lane;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
              for (int c = 0; c < 4; ++c)
                if (nt * 8 + 2 * t + (c & 1) < p.m) dst[(nt * 4 + c) * 32] = acc[nt][c];
          }
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
        }
        if (++u == ku) {
          u = 0;
          ++rt;
        }
      }
      wp += G * 512;
    }
  }
  pdl_trigger();

  // ---- the partial tiles: arrive; the last contributor to arrive adds them in warp order ----
  // The partial tiles, from where the run ended (rt, u: the chunk after its last; idle warps have
  // rt = rt_first = 0, u = 0, aligned: none). The first tile is partial if the run starts inside it
  // or ends inside it; a later last tile if the run ends inside it.
  const int part0 = !aligned || (rt == rt_first && u != 0) ? rt_first : -1;
  const int part1 = u != 0 && rt != rt_first ? rt : -1;
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
    __syncwarp();
    const int64_t t0 = static_cast<int64_t>(tile) * ku;  // the tile's chunks [t0, t0 + ku)
    const int w_first = stream_owner(t0, chunks, n_warps);
    const int w_last = stream_owner(t0 + ku - 1, chunks, n_warps);
    if (old != w_last - w_first) continue;  // not the last of its w_last - w_first + 1 contributors
    __threadfence();
    // The first contributor holds the tile in slot 0 if the tile is its first (its run starts at
    // the tile's unit 0), else in slot 1 (its last); every later contributor's run starts inside
    // the tile: slot 0.
    const int slot_first = stream_run_begin(w_first, chunks, n_warps) >= t0 ? 0 : 1;
    float v[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) v[nt][0] = v[nt][1] = v[nt][2] = v[nt][3] = 0.0f;
#pragma unroll 1
    for (int w = w_first; w <= w_last; ++w) {
      const float* src = p.ws + (static_cast<size_t>(w) * 2 + (w == w_first ? slot_first : 0)) * kVals * 32 + lane;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int c = 0; c < 4; ++c)
          if (nt * 8 + 2 * t + (c & 1) < p.m) v[nt][c] += __ldcg(src + (nt * 4 + c) * 32);
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int row = tile * 16 + g + 8 * (c >> 1), tok = nt * 8 + 2 * t + (c & 1);
        if (row < p.n && tok < p.m)
          p.y[static_cast<size_t>(tok) * p.n + row] = __bfloat16_as_ushort(__float2bfloat16_rn(v[nt][c]));
      }
    if (lane == 0) p.counters[tile] = 0;  // ready for the next launch (it touches it only after pdl_wait)
  }
}

// Host side: one wave of blocks (per_sm: resident blocks per SM, cached by the caller), fewer when
// the weight is small so that a warp streams at least ~8 chunks; the workspace holds two partial
// tiles per warp, the counters one per row tile.
template <class F>
Status gemv_w4_stream_launch(void (*kernel)(W4KernelParams), const GemvConfig& c, int per_sm, W4KernelParams& p,
                             Stream& s) {
  const int64_t chunks = static_cast<int64_t>(p.n16) * p.ku;
  if (chunks == 0) return s.memset(p.y, 0, static_cast<size_t>(p.m) * p.n * sizeof(uint16_t));  // K = 0: y = 0
  const int64_t wave = static_cast<int64_t>(per_sm) * s.info().sm_count;
  const int blocks = static_cast<int>(std::clamp<int64_t>(chunks / (8 * c.warps), 1, std::max<int64_t>(1, wave)));
  p.splits = 1;
  const size_t ws_bytes = static_cast<size_t>(blocks) * c.warps * 2 * (c.nt * 4) * 32 * sizeof(float);
  NB_TRY(s.scratch(ws_bytes, static_cast<size_t>(p.n16), &p.ws, &p.counters));
  return launch_pdl(F::kName, kernel, dim3(blocks), dim3(c.warps * 32), 0, s, p);
}

}  // namespace nibble::cuda

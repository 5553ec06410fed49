// The finite set of GEMV kernel configurations (one instantiation each), shared by the kernels
// and the host-side choice. Plain C++: no CUDA types.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nibble::cuda {

struct GemvConfig {
  int nt;      // n-tiles of 8 activation rows: serves M <= 8 * nt (1, 2 or 4)
  int warps;   // warps per block; each owns its own rt row tiles, all warps share the block's K range
  int rt;      // 16-row tiles per warp (they share each activation fragment load)
  int ahead;   // units of weights a warp loads ahead of the one it computes (1..3; registers)
  int xahead;  // units of activations loaded ahead (1..3)
  int chains;  // MMA accumulator chains per unit: 1 (one chain of 4) or 2 (two of 2, twice the FFMAs)
  int fold;    // INT4 only (other formats ignore it): codes as 128 + c, the offset taken off in fp32
  int pf;      // units of weights (and their scales) prefetched into L2 ahead, by one bulk prefetch per
               // warp and group of 4 units (sm_90; 0 = none): deep look-ahead without registers
  int rd;      // NF4 / MXFP4 (table formats): words of the 4 per unit decoded in registers (PRMT on a
               // 16-entry codebook) instead of by the shared-memory table: moves work off the L1/shared pipe
  int kw = 1;  // warps per row-tile group that split the block's K range (reduced in shared memory):
               // the small layers' split-K without global partials, fences and counters
  int run = 0;  // > 0: the persistent run kernel (gemv_w4_run.cuh, M <= 8, K % 256 == 0) with this
                // many warps resident per SM; it uses nt, warps, ahead (1..7) and xahead only
  int xs = 0;   // 1: the activations staged in shared memory, a group of 4 units (256 columns, all
                // M rows) at a time, double-buffered by cp.async; every warp of the block reads its
                // B fragments from there (kw must be 1; xahead is ignored). No activation registers
                // ahead: at M = 32 that is 114 registers for 8 warps, 16 warps a SM (docs/kernels.md,
                // session 6).
  int wg = 0;   // > 0: the warpgroup kernel (gemv_w4_wg.cuh, sm_90a only): `wg` warpgroups a block, each
                // 64 rows (a row tile a warp), wgmma with the decoded weights as A from registers and
                // the activations as B from shared memory; uses nt, warps (= 4 * wg) and ahead only
  int wide = 0;  // run kernel, table formats: 1 = the decode table at a 64 KB-aligned shared address with
                 // a 256-byte entry stride, so that one PRMT of the code word and the lane's base is a
                 // lookup's whole address (2 instructions a lookup instead of 3). Needs 128 KB of dynamic
                 // shared memory: one block a SM, so warps == run (docs/kernels.md, session 10).
  int bulk = 0;  // run kernel, sm_90: > 0 = weights through the bulk copy engine, `bulk` stages of one
                 // group (2 KB) a warp in shared memory instead of `ahead` units in registers
                 // (bench/skeleton_probe.cu: a bare read that way reaches 0.96 of the floor, not 0.83)
};

// xs: bytes of one staged token row (256 bf16 columns + 64 bytes of padding, so that the two rows a
// quarter-warp reads fall in different bank halves) and the dynamic shared memory of a block (two
// stages of 8 * nt rows). The kernel and the launch both size the stages from these.
inline constexpr int kGemvXsRowBytes = 4 * 64 * 2 + 64;
constexpr size_t gemv_xs_smem_bytes(const GemvConfig& c) {
  return c.xs > 0 ? static_cast<size_t>(2) * c.nt * 8 * kGemvXsRowBytes : 0;
}
// wg: the activations' stages (kGemvWgStages of 4 units, each unit nt * 8 token rows of 128 bytes,
// 128-byte swizzled for wgmma) and 1 KB of slack to align them to 1024 bytes.
inline constexpr int kGemvWgStages = 2;
constexpr size_t gemv_wg_smem_bytes(const GemvConfig& c) {
  return c.wg > 0 ? static_cast<size_t>(kGemvWgStages) * 4 * c.nt * 1024 + 1024 : 0;
}

// A block covers warps * rt row tiles; K is split across blocks so that they fill whole waves.
// Weights stream into registers; activations come through L1, or (xs) through shared memory.
inline constexpr GemvConfig kGemvConfigs[] = {
    {1, 4, 1, 3, 1, 1, 0, 0, 0},   // 0  M <= 8
    {1, 8, 1, 3, 1, 1, 0, 0, 0},   // 1  M <= 8: eight warps share one decode table and the activations in L1
    {1, 8, 1, 2, 1, 1, 0, 0, 0},   // 2  M <= 8
    {1, 8, 1, 3, 2, 1, 0, 0, 0},   // 3  M <= 8: activations two units ahead
    {1, 8, 1, 3, 1, 2, 0, 0, 0},   // 4  M <= 8: two MMA chains per unit
    {1, 4, 1, 3, 2, 1, 0, 0, 0},   // 5  M <= 8
    {1, 16, 1, 2, 1, 1, 0, 0, 0},  // 6  M <= 8
    {1, 8, 1, 1, 1, 1, 0, 0, 0},   // 7  M <= 8
    {1, 4, 2, 2, 1, 1, 0, 0, 0},   // 8  M <= 8: two row tiles share each activation load
    {1, 4, 1, 3, 1, 1, 1, 0, 0},   // 9  M <= 8: INT4 offset folded into fp32
    {1, 8, 1, 3, 1, 1, 1, 0, 0},   // 10 M <= 8: INT4 offset folded into fp32
    {1, 16, 1, 3, 1, 1, 0, 0, 0},  // 11 M <= 8
    {1, 2, 1, 3, 1, 1, 0, 0, 0},   // 12 M <= 8: small blocks
    {2, 4, 1, 3, 1, 1, 0, 0, 0},   // 13 M <= 16
    {2, 8, 1, 2, 1, 1, 0, 0, 0},   // 14 M <= 16
    {4, 4, 1, 2, 1, 1, 0, 0, 0},   // 15 M <= 32
    {4, 8, 1, 2, 1, 1, 0, 0, 0},   // 16 M <= 32
    {4, 4, 1, 1, 1, 2, 0, 0, 0},   // 17 M <= 32
    // v4: L2 prefetch and register decode (docs/kernels.md, items 10-12)
    {1, 8, 1, 2, 1, 1, 0, 16, 0},   // 18 M <= 8
    {1, 8, 1, 2, 1, 1, 0, 32, 0},   // 19 M <= 8
    {1, 4, 1, 3, 1, 1, 0, 16, 0},   // 20 M <= 8
    {1, 4, 1, 3, 1, 1, 0, 32, 0},   // 21 M <= 8
    {1, 8, 1, 2, 1, 1, 0, 0, 1},    // 22 M <= 8: one word in four decoded in registers
    {1, 8, 1, 2, 1, 1, 0, 16, 1},   // 23 M <= 8
    {1, 8, 1, 2, 1, 1, 0, 16, 2},   // 24 M <= 8: two words in four in registers
    {1, 4, 1, 3, 1, 1, 0, 16, 1},   // 25 M <= 8
    {2, 8, 1, 2, 1, 1, 0, 16, 0},   // 26 M <= 16
    {4, 4, 1, 2, 1, 1, 0, 16, 0},   // 27 M <= 32
    {4, 4, 1, 2, 1, 1, 0, 16, 1},   // 28 M <= 32
    {4, 8, 1, 2, 1, 1, 0, 16, 1},   // 29 M <= 32
    {1, 8, 1, 2, 1, 1, 0, 4, 0},    // 30 M <= 8: L2 prefetch one group ahead
    {1, 8, 1, 2, 1, 1, 0, 8, 0},    // 31 M <= 8
    {1, 4, 1, 3, 1, 1, 0, 8, 0},    // 32 M <= 8
    {1, 8, 1, 3, 1, 1, 0, 8, 0},    // 33 M <= 8
    {4, 4, 1, 2, 1, 1, 0, 8, 0},    // 34 M <= 32
    {1, 8, 1, 2, 1, 1, 0, 0, 0, 2}, // 35 M <= 8: 4 row tiles x 2 K ranges per block
    {1, 8, 1, 2, 1, 1, 0, 0, 0, 4}, // 36 M <= 8: 2 row tiles x 4 K ranges
    {1, 8, 1, 2, 1, 1, 0, 0, 0, 8}, // 37 M <= 8: 1 row tile x 8 K ranges
    {1, 4, 1, 3, 1, 1, 0, 0, 0, 2}, // 38 M <= 8
    {1, 4, 1, 3, 1, 1, 0, 0, 0, 4}, // 39 M <= 8
    {1, 16, 1, 2, 1, 1, 0, 0, 0, 8}, // 40 M <= 8: 2 row tiles x 8 K ranges
    {4, 4, 1, 2, 1, 1, 0, 0, 0, 2}, // 41 M <= 32
    {4, 4, 1, 2, 1, 1, 0, 0, 0, 4}, // 42 M <= 32
    // M <= 16 (batch 16 decode) with the K split of 35-42
    {2, 8, 1, 2, 1, 1, 0, 0, 0, 8}, // 43 M <= 16: 1 row tile x 8 K ranges
    {2, 8, 1, 2, 1, 1, 0, 0, 0, 4}, // 44 M <= 16: 2 row tiles x 4 K ranges
    {2, 4, 1, 2, 1, 1, 0, 0, 0, 2}, // 45 M <= 16: 2 row tiles x 2 K ranges
    {2, 4, 1, 2, 1, 1, 0, 0, 0, 4}, // 46 M <= 16: 1 row tile x 4 K ranges
    // Session 4: the persistent run kernel, one wave of `run` warps per SM (bench/skeleton_probe.cu)
    {1, 8, 1, 4, 2, 1, 0, 0, 0, 1, 16}, // 47 M <= 8: 16 warps per SM, weights 4 units ahead (the probe's best skeleton)
    {1, 8, 1, 4, 3, 1, 0, 0, 0, 1, 16}, // 48 M <= 8: activations 3 units ahead
    // Session 6: activations staged in shared memory (xs). Measured and dropped: the same at M <= 16
    // (4 x 2 and 8 x 1: 3,796 and 3,830 against 4,207 tok/s at batch 16) and 8 warps x 2 row tiles
    // at M <= 32 (8 warps a SM: 0.167 of the floor).
    {4, 4, 2, 2, 1, 1, 0, 0, 0, 1, 0, 1}, // 49 M <= 32: 4 warps x 2 row tiles share one staged x
    {4, 8, 1, 2, 1, 1, 0, 0, 0, 1, 0, 1}, // 50 M <= 32: 8 warps x 1 row tile
    // Session 9: the warpgroup kernel (wgmma, sm_90a), activations staged in shared memory
    {4, 8, 1, 2, 1, 1, 0, 0, 0, 1, 0, 0, 2}, // 51 M <= 32: 2 warpgroups a block
    {4, 16, 1, 2, 1, 1, 0, 0, 0, 1, 0, 0, 4}, // 52 M <= 32: 4 warpgroups a block (a quarter of the activation copies a weight byte)
    {4, 8, 1, 3, 1, 1, 0, 0, 0, 1, 0, 0, 2}, // 53 M <= 32: weights 3 units ahead
    {2, 8, 1, 2, 1, 1, 0, 0, 0, 1, 0, 0, 2}, // 54 M <= 16
    {2, 16, 1, 2, 1, 1, 0, 0, 0, 1, 0, 0, 4}, // 55 M <= 16
    {1, 8, 1, 2, 1, 1, 0, 0, 0, 1, 0, 0, 2}, // 56 M <= 8
    // Session 10: the run kernel as one 16-warp block a SM, with the decode table as 48 or wide (57, 58).
    // Measured and dropped: 58 with weights 6 or 7 units ahead (the same 8-slot ring, no more
    // registers): M = 1 NF4 0.539 -> 0.526 / 0.512, batch 1 443 -> 439 / 435 tok/s.
    {1, 16, 1, 4, 3, 1, 0, 0, 0, 1, 16}, // 57 M <= 8: entry 48 as one block a SM (the control for 58)
    {1, 16, 1, 4, 3, 1, 0, 0, 0, 1, 16, 0, 0, 1}, // 58 M <= 8: 57 with the wide decode table
    // Session 15: 58 with its weights through the bulk copy engine, two stages of a group a warp.
    // Measured slower than 58 (NF4 M = 1 0.544 against 0.572 forced on all 15 shapes) and more so
    // with 3 and 4 stages (0.521, 0.502; dropped): kept as the memory side a leaner decode could use.
    {1, 16, 1, 4, 3, 1, 0, 0, 0, 1, 16, 0, 0, 1, 2}, // 59 M <= 8
};
// Dynamic shared memory of the run kernel with the wide table: 64 KB of table at the first 64 KB
// boundary of the shared window at or after the block's dynamic base (at most 64 KB - 1 in).
inline constexpr size_t kGemvWideTableSmem = 128 * 1024;
// Dynamic shared memory of a run kernel configuration: the bulk ring (2 KB a stage and warp, from the
// 128-byte-aligned base) and the wide table. With both, the ring fills the space around the table:
// 64 KB of table, the ring, at most 2 KB lost below the table and 127 bytes of alignment.
constexpr size_t gemv_run_smem_bytes(const GemvConfig& c, bool lut) {
  const bool wide = c.wide != 0 && lut;
  const size_t ring = static_cast<size_t>(c.bulk) * c.warps * 2048;
  if (c.bulk == 0) return wide ? kGemvWideTableSmem : 0;
  return wide ? ring + 65536 + 2048 + 128 : ring + 128;
}
inline constexpr int kGemvConfigCount = sizeof(kGemvConfigs) / sizeof(kGemvConfigs[0]);

// The v4 kernel's blocks along N: each block holds warps / kw row-tile groups of rt 16-row tiles.
constexpr int64_t gemv_v4_row_blocks(const GemvConfig& c, int64_t n16) {
  const int64_t tiles = c.warps / (c.kw > 1 ? c.kw : 1) * c.rt;
  return (n16 + tiles - 1) / tiles;
}
// The resident blocks a SM the v4 kernel's launch bounds ask for: M <= 8 with 8 or more warps a
// block, and the register decode of the table formats, are held to 64 registers (8-warp blocks: 4
// a SM, where one register more would leave 3); 1 (no register cap) otherwise.
constexpr int gemv_v4_min_blocks_per_sm(int nt, int warps, bool reg_decode) {
  return nt == 1 && (warps >= 8 || reg_decode) ? 1024 / (warps * 32) : 1;
}

constexpr int gemv_nt_for(int m) { return m <= 8 ? 1 : m <= 16 ? 2 : 4; }

// Defaults per format (NF4, INT4, MXFP4) and n-tile count (index = nt / 2: 1 -> 0, 2 -> 1,
// 4 -> 2), per architecture family. sm_90: chosen in the v4 session (docs/kernels.md, item 14) from
// the 15-shape sweep without PDL (bench/results/gemv_v4_final_summary_NVIDIA-H200_2026-11-21.txt)
// and the Llama-3-8B decode-step chain with PDL (gemv_v4_chain_*.txt), where the two disagreed the
// chain decided: NF4 8 warps as 1 row tile x 8 K ranges, INT4 4 warps as 2 x 2, MXFP4 4 warps as
// 1 x 4; M <= 32 4 warps as 2 x 2 (INT4 1 x 4). M <= 16 (entries 43-46, chosen end to end: the
// Llama-3-8B decode step at batch 16 with NIBBLE_GEMV_CONFIG, bench/results/e2e_NVIDIA-H200_2026-
// 11-21.log): NF4 8 warps as 2 x 4 (3886 -> 3978 tok/s), INT4 8 warps as 1 x 8 (4143 -> 4357).
// Session 7, NF4 now widened to fp32 absmax, the same sweep over entries 13, 14, 26, 43-46
// (bench/results/gemv_m16_e2e_sweep_NVIDIA-H200_2026-11-21.txt): NF4 and MXFP4 both take 4 warps
// as 2 x 2 (entry 45): NF4 4,240-4,246 -> 4,280-4,290 tok/s, MXFP4 (v3's entry 14 until then)
// 4,138-4,151 -> 4,302-4,304; INT4 4 warps as 1 x 4 (entry 46): 4,601-4,608 -> 4,747-4,749. The
// sm_80 rows are v3's and unmeasured (no A100 here). Session 13: NF4 with fp16 absmax (FmtNf4h,
// the default form) takes entry 44 at 9-16 rows instead (gemv_default_config, w4_pack.cpp).
inline constexpr int kGemvDefaultSm90[3][3] = {{37, 45, 41}, {38, 46, 42}, {39, 45, 41}};
inline constexpr int kGemvDefaultSm80[3][3] = {{2, 14, 15}, {0, 13, 15}, {2, 14, 15}};

}  // namespace nibble::cuda

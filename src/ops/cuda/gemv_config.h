// The finite set of GEMV kernel configurations (one instantiation each), shared by the kernels
// and the host-side choice. Plain C++: no CUDA types.
#pragma once

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
};

// A block covers warps * rt row tiles; K is split across blocks so that they fill whole waves.
// No dynamic shared memory: weights stream into registers, activations through L1.
inline constexpr GemvConfig kGemvConfigs[] = {
    {1, 4, 1, 3, 1, 1, 0},   // 0  M <= 8
    {1, 8, 1, 3, 1, 1, 0},   // 1  M <= 8: eight warps share one decode table and the activations in L1
    {1, 8, 1, 2, 1, 1, 0},   // 2  M <= 8
    {1, 8, 1, 3, 2, 1, 0},   // 3  M <= 8: activations two units ahead
    {1, 8, 1, 3, 1, 2, 0},   // 4  M <= 8: two MMA chains per unit
    {1, 4, 1, 3, 2, 1, 0},   // 5  M <= 8
    {1, 16, 1, 2, 1, 1, 0},  // 6  M <= 8
    {1, 8, 1, 1, 1, 1, 0},   // 7  M <= 8
    {1, 4, 2, 2, 1, 1, 0},   // 8  M <= 8: two row tiles share each activation load
    {1, 4, 1, 3, 1, 1, 1},   // 9  M <= 8: INT4 offset folded into fp32
    {1, 8, 1, 3, 1, 1, 1},   // 10 M <= 8: INT4 offset folded into fp32
    {1, 16, 1, 3, 1, 1, 0},  // 11 M <= 8
    {1, 2, 1, 3, 1, 1, 0},   // 12 M <= 8: small blocks
    {2, 4, 1, 3, 1, 1, 0},   // 13 M <= 16
    {2, 8, 1, 2, 1, 1, 0},   // 14 M <= 16
    {4, 4, 1, 2, 1, 1, 0},   // 15 M <= 32
    {4, 8, 1, 2, 1, 1, 0},   // 16 M <= 32
    {4, 4, 1, 1, 1, 2, 0},   // 17 M <= 32
};
inline constexpr int kGemvConfigCount = sizeof(kGemvConfigs) / sizeof(kGemvConfigs[0]);

constexpr int gemv_nt_for(int m) { return m <= 8 ? 1 : m <= 16 ? 2 : 4; }

// Defaults per format (NF4, INT4, MXFP4) and n-tile count (index = nt / 2: 1 -> 0, 2 -> 1,
// 4 -> 2), per architecture family: the best fixed configuration by geometric mean over the 15
// shapes in the final H200 sweep of v3 (bench/results/gemv_v3_NVIDIA-H200_2026-11-21.json,
// "per_config_summary"; the first few were within 1 % of each other, so these are the fastest
// of a near tie). M <= 16 was not swept and takes the M <= 8 winner's shape. The sm_80 rows are
// unmeasured (no A100 here).
inline constexpr int kGemvDefaultSm90[3][3] = {{2, 14, 15}, {0, 13, 15}, {2, 14, 15}};
inline constexpr int kGemvDefaultSm80[3][3] = {{2, 14, 15}, {0, 13, 15}, {2, 14, 15}};

}  // namespace nibble::cuda

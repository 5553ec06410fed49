// The finite set of GEMV kernel configurations (one instantiation each), shared by the kernels
// and the host-side choice. Plain C++: no CUDA types.
#pragma once

#include <cstdint>

namespace nibble::cuda {

struct GemvConfig {
  int nt;      // n-tiles of 8 activation rows: serves M <= 8 * nt (1, 2 or 4)
  int warps;   // warps per block; they split the block's K range, one 64-column unit at a time
  int rt;      // 16-row tiles per block (each warp keeps all of them)
  int stages;  // depth of each warp's shared-memory ring of in-flight units (cp.async)
};

// Sized so the cross-warp reduction (warps * rt*16 * nt*8 floats) fits the 32 KB table area.
// Dynamic shared memory per block = warps * stages * (rt * 592 + M * 144) bytes (+33 KB static).
inline constexpr GemvConfig kGemvConfigs[] = {
    {1, 8, 1, 8},  // 0  M <= 8: 8 units in flight per warp
    {1, 4, 2, 8},  // 1  M <= 8: two row tiles share each x chunk
    {1, 8, 1, 4},  // 2  M <= 8: shallower ring, more blocks resident
    {1, 4, 2, 4},  // 3  M <= 8
    {2, 4, 2, 4},  // 4  M <= 16
    {2, 8, 1, 4},  // 5  M <= 16
    {4, 4, 2, 3},  // 6  M <= 32
    {4, 4, 4, 3},  // 7  M <= 32: four row tiles per x chunk
    {4, 8, 2, 2},  // 8  M <= 32
    {1, 4, 4, 4},  // 9  M <= 8: four row tiles share each x chunk and the loop overhead
    {1, 2, 4, 8},  // 10 M <= 8: two warps, deep rings
    {2, 4, 4, 4},  // 11 M <= 16
    {4, 2, 4, 4},  // 12 M <= 32: two warps, four row tiles
    {1, 4, 8, 4},  // 13 M <= 8: eight row tiles per warp (split-K fills the GPU)
    {1, 2, 8, 6},  // 14 M <= 8
    {4, 4, 4, 2},  // 15 M <= 32: like 7 with a shallower ring (more blocks resident)
};
inline constexpr int kGemvConfigCount = sizeof(kGemvConfigs) / sizeof(kGemvConfigs[0]);

// Bytes of one ring stage: rt weight units (512 B) and their scale words (80 B), then the M
// activation rows of the unit (128 B each, padded to 144 so the 8 rows' fragments hit
// different banks).
constexpr int gemv_stage_bytes(int rt, int m) { return rt * (512 + 80) + m * 144; }

constexpr int gemv_nt_for(int m) { return m <= 8 ? 1 : m <= 16 ? 2 : 4; }

// Defaults per n-tile count (index = nt / 2: 1 -> 0, 2 -> 1, 4 -> 2), per architecture family:
// the best fixed configuration by geometric mean over the 15 shapes in the H200 sweep of
// 2026-11-21 (bench/results/gemv_NVIDIA-H200_2026-11-21.json, "per_config_summary"); M <= 16 was
// not swept and takes the M <= 8 winner's shape. The sm_80 row is unmeasured (no A100 here).
inline constexpr int kGemvDefaultSm90[3] = {3, 4, 15};
inline constexpr int kGemvDefaultSm80[3] = {3, 4, 15};

}  // namespace nibble::cuda

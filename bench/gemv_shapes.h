// The 15 layer shapes the 4-bit GEMV is measured on (../shared/anchors: Llama-3.3-70B, Qwen3-32B,
// Gemma-3-27B, Llama-3-8B), shared by nibble's GEMV benchmark and the llama.cpp anchor
// (bench/llamacpp_mulmat.cpp) so that both time the same list. Plain C++, no dependencies.
#pragma once

#include <cstdint>

struct GemvShape {
  const char* name;
  int64_t n, k;  // weight [n, k]: n outputs (q|k|v and gate|up stacked), k inputs
};

inline constexpr GemvShape kGemvShapes[] = {
    {"llama70b.qkv", 8192 + 2 * 1024, 8192},   {"llama70b.o", 8192, 8192},
    {"llama70b.gate_up", 2 * 28672, 8192},     {"llama70b.down", 8192, 28672},
    {"qwen3-32b.qkv", 8192 + 2 * 1024, 5120},  {"qwen3-32b.o", 5120, 8192},
    {"qwen3-32b.gate_up", 2 * 25600, 5120},    {"qwen3-32b.down", 5120, 25600},
    {"gemma3-27b.qkv", 4096 + 2 * 2048, 5376}, {"gemma3-27b.o", 5376, 4096},
    {"gemma3-27b.gate_up", 2 * 21504, 5376},   {"gemma3-27b.down", 5376, 21504},
    {"llama8b.qkv", 4096 + 2 * 1024, 4096},    {"llama8b.gate_up", 2 * 14336, 4096},
    {"llama8b.down", 4096, 14336},
};

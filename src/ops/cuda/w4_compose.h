// Building packed 4-bit weights other than from a checkpoint: random ones for benchmarks at
// real shapes, and the row concatenation that fuses q/k/v and gate/up into one GEMV.
#pragma once

#include <cstdint>
#include <span>

#include "core/status.h"
#include "ops/cuda/gemv_w4.h"

namespace nibble::cuda {

// A random weight [n, k] already in the packed layout: uniformly random codes, scales drawn so
// that the rows have roughly unit norm (std ~ 1/sqrt(k)), in the format's native scale encoding.
// NF4 is double-quantized (uint8 absmax codes, nested fp32 absmax, offset) as bitsandbytes
// checkpoints are; INT4 has bf16 scales and no zero points. Deterministic in `seed`.
Result<W4Packed> w4_random(W4Format format, int64_t n, int64_t k, uint64_t seed);

// The packed weight of the matrix whose rows are parts[0], then parts[1], ... (y = [y0 | y1 | ..]).
// The parts must share the format, flags, codebook and k, and every part but the last must have
// a multiple of 16 rows. NF4 double quantization cannot be concatenated (each part has its own
// offset): `unsupported`, and the caller keeps the parts separate.
Result<W4Packed> w4_concat_rows(std::span<const W4Packed* const> parts);

// The gate and up projections of a gated MLP as one weight whose rows are interleaved by 8: row
// tile j (rows [16j, 16j + 16)) holds gate rows [8j, 8j + 8), then up rows [8j, 8j + 8), so that
// a GEMV lane holds gate and up of the same output (W4Epilogue). Both parts share format, flags,
// codebook, k and n, with n % 8 == 0. Double-quantized NF4 is `unsupported` (its nested absmax is
// indexed by the canonical row: the same reason as w4_concat_rows).
Result<W4Packed> w4_interleave_glu(const W4Packed& gate, const W4Packed& up);

}  // namespace nibble::cuda

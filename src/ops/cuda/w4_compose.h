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
// a multiple of 16 rows. Double-quantized NF4 parts (at most kW4MaxParts, each one tensor with
// the same 8-bit map) keep their own offsets and nested absmax (W4DqParts); every part but the
// last must then fill whole nested blocks (rows * K / 64 a multiple of 256), else `unsupported`
// and the caller packs them otherwise.
Result<W4Packed> w4_concat_rows(std::span<const W4Packed* const> parts);

// The gate and up projections of a gated MLP as one weight whose rows are interleaved by 8: row
// tile j (rows [16j, 16j + 16)) holds gate rows [8j, 8j + 8), then up rows [8j, 8j + 8), so that
// a GEMV lane holds gate and up of the same output (W4Epilogue). Both parts share format, flags,
// codebook, k and n, with n % 8 == 0. Double-quantized NF4 parts must each be one tensor with the
// same 8-bit map: the result indexes their nested absmax by each part's own rows
// (kW4NestedGlu) and adds gate's offset to gate rows, up's to up rows.
Result<W4Packed> w4_interleave_glu(const W4Packed& gate, const W4Packed& up);

// A double-quantized NF4 weight (one tensor or a composition) with every absmax widened to fp32,
// the value the kernel would compute (dmap[q] * nested, then + the part's offset, each rounded):
// the same products, 4 bytes of absmax a block instead of 1. Decoding fp32 absmax costs the
// GEMV less than the bytes it adds (docs/gpu_backend.md), so models take this form when it fits.
// stream_bytes stays the double-quantized count: what the format must move, the floor's numerator.
Result<W4Packed> w4_widen_nested(const W4Packed& w);

// An NF4 weight with fp32 absmax (one tensor, a composition, or widened from double quantization)
// with every absmax rounded to fp16, to nearest even (kW4ScaleF16): 2 bytes a block of 64 instead
// of 4, 5.6 % fewer bytes for the GEMV to stream. The relative change of a weight is at most 2^-11
// (a quarter of the bf16 rounding the activations get, an eighth of bitsandbytes' own bf16
// rounding of each dequantized weight); absmax below fp16's normal range (6.1e-5) keep an absolute
// error of at most 2^-25. In place; `unsupported` when some absmax is not finite in fp16 (above
// 65504), and then `w` is unchanged (it keeps fp32). stream_bytes is unchanged: the floor counts
// the checkpoint's format.
Status w4_narrow_absmax(W4Packed& w);

}  // namespace nibble::cuda

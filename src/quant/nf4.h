// bitsandbytes 4-bit blockwise quantization (NF4 and its FP4), bit-for-bit as bitsandbytes'
// CUDA kernels produce and read it, plus the 8-bit "dynamic" blockwise quantization that
// double quantization (bnb_4bit_use_double_quant) applies to the per-block absmax values.
//
// What "exactly" means here (checked against bitsandbytes itself by tests/unit/quant with
// goldens from tools/make_quant_goldens.py):
//   * a block's scale is absmax = max |x| over the block, in fp32 (x widened exactly);
//   * each x is multiplied by the fp32 reciprocal 1/absmax (not divided), then mapped to a code
//     by comparing against the midpoints between neighbouring table values with a strict '>':
//     a value exactly on a midpoint takes the LOWER code. (bnb's default torch path, bucketize
//     with right=False, makes the same choice.) NaN ends at code 0;
//   * the 8-bit dynamic quantizer is bnb's binary search over its 256-entry sorted map followed by
//     a nearest choice against the fp32 midpoint (a tie keeps the searched pivot);
//   * the double-quant offset is the mean of the absmax values, then absmax - offset is
//     quantized with the 8-bit map in blocks of 256.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quant/quant_weight.h"

namespace nibble::quant {

enum class Bnb4Type { kNf4, kFp4 };

// The 16 code values, in nibble order (NF4 is sorted; FP4 is sign-magnitude order:
// nibble = sign << 3 | 3-bit magnitude, normalized so that the largest is 1).
const std::array<float, 16>& bnb4_code(Bnb4Type t);
const char* bnb4_name(Bnb4Type t);  // "nf4" / "fp4"

// The code of one value already scaled into [-1, 1], as bnb's CUDA quantizer picks it.
uint8_t bnb4_encode(Bnb4Type t, float x);

// bitsandbytes' signed 8-bit dynamic map (create_dynamic_map(signed=True)): 256 sorted values.
const std::array<float, 256>& dynamic_map_signed();
// The 8-bit code of x (already scaled into [-1, 1]) on a sorted 256-entry map.
uint8_t dynamic_encode(const float* code256, float x);

// Blockwise 4-bit quantization of a flattened tensor x[0..n).
// Layout: packed [ceil(n/2)] bytes, element i in byte i/2, HIGH nibble when i is even (an odd n
//         leaves the last low nibble 0); absmax [ceil(n/blocksize)] fp32, one per block of
//         `blocksize` consecutive elements (blocks run across matrix rows).
struct Bnb4Quantized {
  std::vector<uint8_t> packed;
  std::vector<float> absmax;
};
Bnb4Quantized bnb4_quantize(const float* x, int64_t n, int blocksize, Bnb4Type t);

// Blockwise 8-bit dynamic quantization: q [n] codes, absmax [ceil(n/blocksize)].
struct Blockwise8 {
  std::vector<uint8_t> q;
  std::vector<float> absmax;
};
Blockwise8 quantize_blockwise8(const float* x, int64_t n, int blocksize, const float* code256);

// Double quantization of the 4-bit absmax values, as quantize_4bit(compress_statistics=True).
// Layout: q [n_blocks] uint8 (the checkpoint's weight.absmax), nested_absmax
//         [ceil(n_blocks/nested_blocksize)] fp32, offset = mean(absmax) (fp32).
struct DoubleQuant {
  std::vector<uint8_t> q;
  std::vector<float> nested_absmax;
  float offset = 0;
  int nested_blocksize = 256;
};
DoubleQuant double_quantize(const std::vector<float>& absmax, int nested_blocksize = 256);

// absmax[b] = code[q[b]] * nested_absmax[b / nested_blocksize] + offset, each step one fp32
// operation, as bnb's dequantize_blockwise followed by `absmax += offset`.
std::vector<float> double_dequantize(const uint8_t* q, int64_t n_blocks, const float* nested_absmax,
                                     int nested_blocksize, const float* code256, float offset);

// The mean bnb takes of the absmax values (torch.mean on fp32 data).
float bnb_mean(const float* x, int64_t n);

// Which block sizes bnb accepts.
bool bnb4_blocksize_ok(int64_t blocksize);

// A checkpoint's double quantization of the absmax values, as its file holds it:
// absmax[b] = map[q[b]] * nested_absmax[b / nested_blocksize] + offset (double_dequantize).
struct Bnb4Nested {
  std::span<const uint8_t> q;        // [n_blocks] the file's `.absmax`, in its memory map (as `packed`)
  std::vector<float> nested_absmax;  // [ceil(n_blocks / nested_blocksize)]
  std::vector<float> map;            // [256] the file's `.nested_quant_map`
  float offset = 0;
  int nested_blocksize = 256;
};

// A bitsandbytes 4-bit weight [rows, cols], ready for row-wise dequantization.
// Layout: the flattened matrix (element e = r * cols + c) as bnb4_quantize describes; absmax is
// held de-nested (fp32 per block) for the CPU's row dequantization. A double-quantized
// checkpoint's codes are kept too (`nested()`), so that the GPU reads 1 byte per block instead
// of 4 (docs/gpu_backend.md).
// value(e) = code[nibble(e)] * absmax[e / blocksize], one fp32 multiply.
class Bnb4Weight : public QuantWeight {
 public:
  // `packed` (and `nested->q`) must outlive the weight (a memory map) unless `owned` holds it.
  Bnb4Weight(int64_t rows, int64_t cols, int blocksize, Bnb4Type type, std::array<float, 16> code,
             const uint8_t* packed, std::vector<float> absmax, size_t file_bytes,
             std::vector<uint8_t> owned = {}, std::optional<Bnb4Nested> nested = std::nullopt);
  int64_t rows() const override { return rows_; }
  int64_t cols() const override { return cols_; }
  void dequant_row(int64_t r, float* out) const override;
  size_t nbytes() const override { return file_bytes_; }
  std::string format_name() const override;

  int blocksize() const { return blocksize_; }
  const uint8_t* packed() const { return packed_; }
  const std::vector<float>& absmax() const { return absmax_; }
  // The file's double quantization, or null when its absmax was stored in fp32.
  const Bnb4Nested* nested() const { return nested_ ? &*nested_ : nullptr; }

 private:
  int64_t rows_, cols_;
  int blocksize_;
  Bnb4Type type_;
  std::array<float, 16> code_;
  std::vector<uint8_t> owned_;
  const uint8_t* packed_;
  std::vector<float> absmax_;  // [ceil(rows*cols/blocksize)]
  std::optional<Bnb4Nested> nested_;
  size_t file_bytes_;
};

}  // namespace nibble::quant

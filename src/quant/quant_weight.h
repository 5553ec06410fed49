// A quantized weight matrix [rows, cols] in whatever layout its format chose. The CPU matmul
// widens one row at a time through dequant_row; GPU kernels will read the packed layout itself.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace nibble {

class QuantWeight {
 public:
  virtual ~QuantWeight() = default;
  virtual int64_t rows() const = 0;
  virtual int64_t cols() const = 0;
  // out[0..cols) = row r of the dequantized matrix, in fp32, exactly as the format defines it.
  virtual void dequant_row(int64_t r, float* out) const = 0;
  // Bytes the packed weight and its scales take (for `nibble info` and roofline figures).
  virtual size_t nbytes() const = 0;
  virtual std::string format_name() const = 0;  // "nf4", "int4-g128", "mxfp4", ...
};

}  // namespace nibble

// gemv_nf4: NF4 (bitsandbytes 4-bit, blocks of 64, fp32 or double-quantized absmax).
// The kernel is gemv_w4.cuh's, instantiated with this format's scale policy.
#include "ops/cuda/gemv_w4.cuh"

namespace nibble::cuda {

Status gemv_nf4(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config, W4Epilogue ep) {
  if (w.format != W4Format::kNf4)
    return Status::invalid("gemv_nf4: weight is {}, not nf4", w4_format_name(w.format));
  return gemv_w4_launch<FmtNf4>(w, x, m, y, s, config, ep);
}

}  // namespace nibble::cuda

// gemv_nf4: NF4 (bitsandbytes 4-bit, blocks of 64, fp32 or double-quantized absmax; fp16 absmax
// go to gemv_nf4_fp16.cu).
// The kernel is gemv_w4.cuh's, instantiated with this format's scale policy.
#include "ops/cuda/gemv_w4.cuh"

namespace nibble::cuda {

Status gemv_nf4(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config, W4Epilogue ep) {
  if (w.format != W4Format::kNf4)
    return Status::invalid("gemv_nf4: weight is {}, not nf4", w4_format_name(w.format));
  if (w.flags & kW4ScaleF16) return gemv_nf4_fp16(w, x, m, y, s, config, ep);
  return gemv_w4_launch<FmtNf4>(w, x, m, y, s, config, ep);
}

}  // namespace nibble::cuda

// gemv_int4: INT4 w4a16, group 128, symmetric or with zero points.
// The kernel is gemv_w4.cuh's, instantiated with this format's scale policy.
#include "ops/cuda/gemv_w4.cuh"

namespace nibble::cuda {

Status gemv_int4(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config, W4Epilogue ep) {
  if (w.format != W4Format::kInt4)
    return Status::invalid("gemv_int4: weight is {}, not int4", w4_format_name(w.format));
  if (w.k % 128 != 0) return Status::unsupported("gemv_int4: K must be a multiple of 128, got {}", w.k);
  return gemv_w4_launch<FmtInt4>(w, x, m, y, s, config, ep);
}

}  // namespace nibble::cuda

// gemv_mxfp4: MXFP4 (OCP MX: E2M1 values, E8M0 scale per 32).
// The kernel is gemv_w4.cuh's, instantiated with this format's scale policy.
#include "ops/cuda/gemv_w4.cuh"

namespace nibble::cuda {

Status gemv_mxfp4(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config, W4Epilogue ep) {
  if (w.format != W4Format::kMxfp4)
    return Status::invalid("gemv_mxfp4: weight is {}, not mxfp4", w4_format_name(w.format));
  return gemv_w4_launch<FmtMxfp4>(w, x, m, y, s, config, ep);
}

}  // namespace nibble::cuda

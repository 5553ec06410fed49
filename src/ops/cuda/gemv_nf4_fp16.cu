// gemv_nf4 for NF4 weights whose absmax are fp16 (kW4ScaleF16): gemv_w4.cuh's kernel with the
// FmtNf4h scale policy, in its own file so that the two NF4 instantiation sets compile in parallel.
#include "ops/cuda/gemv_w4.cuh"

namespace nibble::cuda {

Status gemv_nf4_fp16(const W4Device& w, const uint16_t* x, int m, uint16_t* y, Stream& s, int config, W4Epilogue ep) {
  return gemv_w4_launch<FmtNf4h>(w, x, m, y, s, config, ep);
}

}  // namespace nibble::cuda

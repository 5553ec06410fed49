// Small per-token ops of the GPU forward pass: logit softcap (fp32), bias add (bf16 rows + fp32
// bias), row gather (bf16) and the gated activation over a fused gate|up projection. Twins:
// ops::softcap, the bias of ops::matmul, a plain row copy, ops::silu_mul / ops::gelu_tanh_mul.
#include "ops/cuda/common.cuh"
#include "ops/cuda/elementwise.h"

namespace nibble::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint16_t to_bf16_bits(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }

__global__ void softcap_kernel(float* x, int64_t n, float cap) {
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  const float inv = 1.0f / cap;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] = cap * tanhf(x[i] * inv);
}

// One thread per 2 columns of one row: bias is read once per row from L1/L2.
__global__ void add_bias_kernel(uint16_t* y, const float* bias, int T, int n) {
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  const int j = (blockIdx.x * blockDim.x + threadIdx.x) * 2;
  if (j >= n) return;
  const float b0 = bias[j], b1 = j + 1 < n ? bias[j + 1] : 0.0f;
  for (int t = blockIdx.y; t < T; t += gridDim.y) {
    uint16_t* row = y + static_cast<size_t>(t) * n;
    row[j] = to_bf16_bits(bf16_bits_to_f32(row[j]) + b0);
    if (j + 1 < n) row[j + 1] = to_bf16_bits(bf16_bits_to_f32(row[j + 1]) + b1);
  }
}

// One block per output row; 16-byte copies when every row starts 16-byte aligned.
__global__ void gather_rows_kernel(const uint16_t* x, const int32_t* rows, int dim, bool vec, uint16_t* out) {
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  const size_t src = static_cast<size_t>(rows[blockIdx.x]) * dim, dst = static_cast<size_t>(blockIdx.x) * dim;
  if (vec) {
    const uint4* s = reinterpret_cast<const uint4*>(x + src);
    uint4* d = reinterpret_cast<uint4*>(out + dst);
    for (int i = threadIdx.x; i < dim / 8; i += blockDim.x) d[i] = s[i];
  } else {
    for (int i = threadIdx.x; i < dim; i += blockDim.x) out[dst + i] = x[src + i];
  }
}

// out[t, j] = act(gate[t, j]) * up[t, j]; 8 columns per thread (16-byte loads when f % 8 == 0).
// Stacked: gate = columns [0, f) of the row, up = [f, 2f). Interleaved by 8 (the GEMV's gated
// layout, w4_interleave_glu): columns [16i, 16i + 8) are gate [8i, 8i + 8), the next 8 up; f % 8 == 0.
__global__ void act_mul_fused_kernel(const uint16_t* gate_up, int T, int f, bool gelu_tanh, bool interleaved8,
                                     uint16_t* out) {
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  const int j0 = (blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (j0 >= f) return;
  for (int t = blockIdx.y; t < T; t += gridDim.y) {
    const uint16_t* row = gate_up + static_cast<size_t>(t) * 2 * f;
    const uint16_t* g = interleaved8 ? row + 2 * j0 : row + j0;
    const uint16_t* u = interleaved8 ? g + 8 : g + f;
    uint16_t* o = out + static_cast<size_t>(t) * f + j0;
    if (f % 8 == 0) {
      const uint4 gv = *reinterpret_cast<const uint4*>(g), uv = *reinterpret_cast<const uint4*>(u);
      const uint32_t gw[4] = {gv.x, gv.y, gv.z, gv.w}, uw[4] = {uv.x, uv.y, uv.z, uv.w};
      uint32_t ow[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float lo = gated_act(bf16_bits_to_f32(gw[i] & 0xFFFF), gelu_tanh) * bf16_bits_to_f32(uw[i] & 0xFFFF);
        const float hi = gated_act(bf16_bits_to_f32(gw[i] >> 16), gelu_tanh) * bf16_bits_to_f32(uw[i] >> 16);
        ow[i] = pack_bf16x2(lo, hi);
      }
      *reinterpret_cast<uint4*>(o) = make_uint4(ow[0], ow[1], ow[2], ow[3]);
    } else {
      for (int j = 0; j < min(8, f - j0); ++j)
        o[j] = to_bf16_bits(gated_act(bf16_bits_to_f32(g[j]), gelu_tanh) * bf16_bits_to_f32(u[j]));
    }
  }
}

}  // namespace

Status softcap_f32(float* x, int64_t n, float cap, Stream& s) {
  if (!(cap > 0)) return Status::invalid("softcap_f32: cap must be > 0, got {}", cap);
  const int blocks = static_cast<int>(std::min<int64_t>(ceil_div(n, kThreads), 132 * 16));
  return launch_pdl("softcap_f32", softcap_kernel, dim3(blocks), dim3(kThreads), 0, s, x, n, cap);
}

Status add_bias(uint16_t* y, const float* bias, int T, int n, Stream& s) {
  return launch_pdl("add_bias", add_bias_kernel, dim3(ceil_div(n, 2 * kThreads), std::min(T, 65535)), dim3(kThreads), 0, s, y, bias,
                T, n);
}

Status gather_rows(const uint16_t* x, const int32_t* rows, int n_rows, int dim, uint16_t* out, Stream& s) {
  const bool vec = dim % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  return launch_pdl("gather_rows", gather_rows_kernel, dim3(n_rows), dim3(128), 0, s, x, rows, dim, vec, out);
}

Status act_mul_fused(const uint16_t* gate_up, int T, int f, bool gelu_tanh, uint16_t* out, Stream& s,
                     bool interleaved8) {
  if (interleaved8 && f % 8 != 0)
    return Status::invalid("act_mul_fused: the interleaved layout needs f % 8 == 0, got f = {}", f);
  if (f % 8 == 0 && (reinterpret_cast<uintptr_t>(gate_up) % 16 != 0 || reinterpret_cast<uintptr_t>(out) % 16 != 0))
    return Status::invalid("act_mul_fused: gate_up and out must be 16-byte aligned");
  return launch_pdl("act_mul_fused", act_mul_fused_kernel, dim3(ceil_div(f, 8 * kThreads), std::min(T, 65535)), dim3(kThreads), 0,
                s, gate_up, T, f, gelu_tanh, interleaved8, out);
}

}  // namespace nibble::cuda

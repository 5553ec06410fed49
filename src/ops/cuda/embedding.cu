// Embedding lookup: one block per token, the row copied and scaled in fp32.
#include "ops/cuda/common.cuh"
#include "ops/cuda/elementwise.h"

namespace nibble::cuda {
namespace {

__global__ void embedding_kernel(const uint16_t* table, int64_t vocab, int dim, const int32_t* tokens, float scale,
                                 uint16_t* out) {
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  const int t = blockIdx.x;
  const int32_t id = tokens[t];
  uint16_t* o = out + static_cast<size_t>(t) * dim;
  const bool ok = id >= 0 && id < vocab;
  const uint16_t* row = table + static_cast<size_t>(ok ? id : 0) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x)
    o[i] = ok ? __bfloat16_as_ushort(__float2bfloat16_rn(bf16_bits_to_f32(row[i]) * scale)) : 0;
}

}  // namespace

Status embedding(const uint16_t* table, int64_t vocab, int dim, const int32_t* tokens, int n, float scale,
                 uint16_t* out, Stream& s) {
  return launch_pdl("embedding", embedding_kernel, dim3(n), dim3(256), 0, s, table, vocab, dim, tokens, scale, out);
}

}  // namespace nibble::cuda

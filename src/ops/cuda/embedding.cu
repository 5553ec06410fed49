// Embedding lookup: one block per token, the row copied and scaled in fp32.
#include "ops/cuda/common.cuh"
#include "ops/cuda/elementwise.h"

namespace nibble::cuda {
namespace {

__global__ void embedding_kernel(const uint16_t* __restrict__ table, int64_t vocab, int dim,
                                 const int32_t* __restrict__ tokens, float scale, uint16_t* __restrict__ out,
                                 PickLinks links) {
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  const int t = blockIdx.x;
  int32_t id = tokens[t];
  if (id < 0 && links.picks) id = links.picks[-1 - id];
  if (links.hist) {  // the penalty histories, in place, for the sampler at the step's end
    const int n_hist = *links.n_hist;
    for (int h = blockIdx.x * blockDim.x + threadIdx.x; h < n_hist; h += gridDim.x * blockDim.x)
      if (const int32_t v = links.hist[h]; v < 0) links.hist[h] = links.picks[-1 - v];
  }
  uint16_t* o = out + static_cast<size_t>(t) * dim;
  const bool ok = id >= 0 && id < vocab;
  const uint16_t* row = table + static_cast<size_t>(ok ? id : 0) * dim;
  auto one = [&](uint16_t v) { return ok ? __bfloat16_as_ushort(__float2bfloat16_rn(bf16_bits_to_f32(v) * scale)) : uint16_t{0}; };
  const bool aligned = ((reinterpret_cast<uintptr_t>(table) | reinterpret_cast<uintptr_t>(out)) & 15) == 0;
  if (dim % 8 == 0 && aligned) {  // 16-byte loads, all of a thread's in flight at once (was one round trip each)
    const uint4* r4 = reinterpret_cast<const uint4*>(row);
    uint4* o4 = reinterpret_cast<uint4*>(o);
#pragma unroll 4
    for (int i = threadIdx.x; i < dim / 8; i += blockDim.x) {
      uint4 v = r4[i];
      uint16_t* e = reinterpret_cast<uint16_t*>(&v);
#pragma unroll
      for (int j = 0; j < 8; ++j) e[j] = one(e[j]);
      o4[i] = v;
    }
  } else {
    for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = one(row[i]);
  }
}

}  // namespace

Status embedding(const uint16_t* table, int64_t vocab, int dim, const int32_t* tokens, int n, float scale,
                 uint16_t* out, Stream& s, PickLinks links) {
  return launch_pdl("embedding", embedding_kernel, dim3(n), dim3(256), 0, s, table, vocab, dim, tokens, scale, out,
                    links);
}

}  // namespace nibble::cuda

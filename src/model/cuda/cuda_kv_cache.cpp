#include "model/cuda/cuda_kv_cache.h"

#include <cuda_runtime_api.h>

namespace nibble::cuda {

Result<std::unique_ptr<CudaKvCache>> CudaKvCache::create(int n_layers, int n_blocks, ops::KvLayout layout,
                                                         Stream& s) {
  std::unique_ptr<CudaKvCache> c(new CudaKvCache(n_blocks, layout));
  c->stream_ = &s;
  c->n_layers_ = n_layers;
  c->per_layer_ = static_cast<size_t>(n_blocks) * layout.block_size * layout.n_kv_heads * layout.head_dim;
  const size_t bytes = 2 * n_layers * c->per_layer_ * sizeof(uint16_t);
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && bytes > free_b)
    return Status::out_of_memory("the KV cache for {} tokens needs {:.2f} GiB on {}, {:.2f} GiB free",
                                 static_cast<int64_t>(n_blocks) * layout.block_size, bytes / 1073741824.0,
                                 s.info().name, free_b / 1073741824.0);
  NB_ASSIGN_OR_RETURN(c->data_, DeviceBuffer<uint16_t>::create(s, 2 * n_layers * c->per_layer_));
  return c;
}

void CudaKvCache::copy_block(int32_t from, int32_t to) {
  if (!stream_->lost().is_ok()) {  // nothing runs on a dead context; the next forward says why
    if (error_.is_ok()) error_ = stream_->lost();
    return;
  }
  const size_t block = per_layer_ / n_blocks_;
  for (int l = 0; l < 2 * n_layers_; ++l) {
    uint16_t* base = data_.get() + l * per_layer_;
    const cudaError_t e = cudaMemcpyAsync(base + to * block, base + from * block, block * sizeof(uint16_t),
                                          cudaMemcpyDeviceToDevice, stream_->get());
    if (e != cudaSuccess && error_.is_ok())
      error_ = Status::internal("KV copy-on-write of block {} failed: {}", from, cudaGetErrorString(e));
  }
}

}  // namespace nibble::cuda

// The paged KV cache of the GPU backend: the block bookkeeping of KvCache on the host, the
// storage on the device as bf16 [n_layers][K, V][n_blocks, block_size, n_kv_heads, head_dim].
#pragma once

#include <memory>
#include <utility>

#include "kv/kv_cache.h"
#include "ops/cuda/device.h"

namespace nibble::cuda {

class CudaKvCache : public KvCache {
 public:
  // Checks the device's free memory first: an error names the bytes needed and free.
  static Result<std::unique_ptr<CudaKvCache>> create(int n_layers, int n_blocks, ops::KvLayout layout, Stream& s);

  uint16_t* k(int layer) const { return data_.get() + (2 * static_cast<size_t>(layer)) * per_layer_; }
  uint16_t* v(int layer) const { return data_.get() + (2 * static_cast<size_t>(layer) + 1) * per_layer_; }
  size_t bytes() const override { return data_.bytes(); }
  int n_blocks() const { return n_blocks_; }
  // A failed copy-on-write (reserve() cannot return it): the next forward call reports it.
  Status take_error() { return std::exchange(error_, Status::ok()); }

 private:
  CudaKvCache(int n_blocks, ops::KvLayout layout) : KvCache(NoHostStorage{}, n_blocks, layout), n_blocks_(n_blocks) {}
  void copy_block(int32_t from, int32_t to) override;

  Stream* stream_ = nullptr;
  int n_layers_ = 0, n_blocks_ = 0;
  size_t per_layer_ = 0;  // elements of one layer's K (or V)
  DeviceBuffer<uint16_t> data_;
  Status error_ = Status::ok();
};

}  // namespace nibble::cuda

// Dense matrix products through cuBLAS: the bf16 weights (embeddings tied to the LM head,
// unquantized checkpoints) and the prefill path of 4-bit weights (dequantized tiles).
#pragma once

#include <cstdint>
#include <memory>

#include "core/status.h"
#include "ops/cuda/device.h"

struct cublasContext;

namespace nibble::cuda {

class Blas {
 public:
  // A handle bound to `s`, with a fixed workspace so that calls can be captured in a CUDA graph.
  static Result<std::unique_ptr<Blas>> create(Stream& s);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  // y [m, n] = x [m, k] @ W^T with W [n, k] row-major bf16, x bf16 (row stride k), fp32
  // accumulation; y is bf16 or fp32 (`y_f32`), row stride n.
  Status gemm(const uint16_t* x, int m, const uint16_t* w, int64_t n, int64_t k, void* y, bool y_f32);

 private:
  Blas() = default;
  Stream* stream_ = nullptr;
  cublasContext* handle_ = nullptr;
  DeviceBuffer<uint8_t> workspace_;
};

}  // namespace nibble::cuda

#include "model/cuda/blas.h"

#include <cublas_v2.h>

namespace nibble::cuda {
namespace {

Status cublas_status(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return Status::ok();
  // Its own allocations failing is device memory running out, as the caller should hear it.
  if (st == CUBLAS_STATUS_ALLOC_FAILED)
    return Status::out_of_memory("cuBLAS {} failed: {} (out of device memory)", what, cublasGetStatusString(st));
  return Status::internal("cuBLAS {} failed: {}", what, cublasGetStatusString(st));
}

constexpr size_t kWorkspace = 32 << 20;  // cuBLAS' recommendation for Hopper

}  // namespace

Result<std::unique_ptr<Blas>> Blas::create(Stream& s) {
  std::unique_ptr<Blas> b(new Blas());
  b->stream_ = &s;
  NB_TRY(cublas_status(cublasCreate(&b->handle_), "create"));
  NB_TRY(cublas_status(cublasSetStream(b->handle_, s.get()), "set stream"));
  NB_ASSIGN_OR_RETURN(b->workspace_, DeviceBuffer<uint8_t>::create(s, kWorkspace));
  NB_TRY(cublas_status(cublasSetWorkspace(b->handle_, b->workspace_.get(), kWorkspace), "set workspace"));
  return b;
}

Blas::~Blas() {
  if (handle_) cublasDestroy(handle_);
}

Status Blas::gemm(const uint16_t* x, int m, const uint16_t* w, int64_t n, int64_t k, void* y, bool y_f32) {
  // Column-major view: Y^T [n, m] = W [n, k] (stored as the k x n column-major W^T) ^T . X^T [k, m].
  const float alpha = 1.0f, beta = 0.0f;
  return cublas_status(
      cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), m, static_cast<int>(k), &alpha, w,
                   CUDA_R_16BF, static_cast<int>(k), x, CUDA_R_16BF, static_cast<int>(k), &beta, y,
                   y_f32 ? CUDA_R_32F : CUDA_R_16BF, static_cast<int>(n), CUBLAS_COMPUTE_32F,
                   CUBLAS_GEMM_DEFAULT),
      "gemm");
}

}  // namespace nibble::cuda

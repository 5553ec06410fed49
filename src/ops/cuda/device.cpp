#include "ops/cuda/device.h"

#include <algorithm>
#include <cstdlib>

namespace nibble::cuda {
namespace {

Status check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::ok();
  return Status::internal("{}: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return n;
}

bool is_sticky_error(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorTensorMemoryLeak:
    case cudaErrorECCUncorrectable:
    case cudaErrorNvlinkUncorrectable:
    case cudaErrorContained:
    case cudaErrorExternalDevice:
    case cudaErrorMpsClientTerminated:
      return true;
    default:
      return false;
  }
}

Result<std::unique_ptr<DevicePool>> DevicePool::create(int device) {
  if (device >= device_count()) return Status::not_found("cuda: no device {} ({} present)", device, device_count());
  NB_TRY(check(cudaSetDevice(device), "cudaSetDevice"));
  std::unique_ptr<DevicePool> p(new DevicePool());
  cudaDeviceProp prop{};
  NB_TRY(check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties"));
  p->info_ = {device, prop.name, prop.major, prop.minor, prop.multiProcessorCount,
              static_cast<size_t>(prop.l2CacheSize)};
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  NB_TRY(check(cudaMemPoolCreate(&p->pool_, &props), "cudaMemPoolCreate"));
  // Keep freed memory in the pool instead of returning it to the driver at each synchronize.
  uint64_t threshold = UINT64_MAX;
  NB_TRY(check(cudaMemPoolSetAttribute(p->pool_, cudaMemPoolAttrReleaseThreshold, &threshold),
               "cudaMemPoolSetAttribute"));
  return p;
}

DevicePool::~DevicePool() {
  if (pool_) cudaMemPoolDestroy(pool_);
}

Result<void*> DevicePool::alloc(size_t bytes, cudaStream_t stream) {
  bytes = (bytes + 255) / 256 * 256;
  void* p = nullptr;
  const cudaError_t e = cudaMallocFromPoolAsync(&p, bytes, pool_, stream);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    return Status::out_of_memory("cuda: out of device memory: needed {} bytes ({:.1f} MiB), {} free of {} ({:.1f} of {:.1f} MiB)",
                                 bytes, bytes / 1048576.0, free_b, total_b, free_b / 1048576.0,
                                 total_b / 1048576.0);
  }
  NB_TRY(check(e, "cudaMallocFromPoolAsync"));
  return p;
}

void DevicePool::free(void* p, cudaStream_t stream) {
  if (p) (void)cudaFreeAsync(p, stream);
}

Result<std::unique_ptr<Stream>> Stream::create(DevicePool& pool) {
  std::unique_ptr<Stream> s(new Stream());
  s->pool_ = &pool;
  NB_TRY(check(cudaSetDevice(pool.info().device), "cudaSetDevice"));
  NB_TRY(check(cudaStreamCreateWithFlags(&s->stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
  return s;
}

Stream::~Stream() {
  if (!stream_) return;
  pool_->free(ws_, stream_);
  pool_->free(counters_, stream_);
  cudaStreamSynchronize(stream_);
  cudaStreamDestroy(stream_);
}

Status Stream::upload(void* dst, const void* src, size_t bytes) {
  return check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "upload");
}
Status Stream::download(void* dst, const void* src, size_t bytes) {
  NB_TRY(check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "download"));
  return sync();
}
Status Stream::memset(void* dst, int value, size_t bytes) {
  return check(cudaMemsetAsync(dst, value, bytes, stream_), "memset");
}
Status Stream::sync() { return check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

Status Stream::settle(Status failed, std::string_view call) {
  if (!lost_.is_ok()) return lost_;
  if (failed.is_ok()) return failed;
  // A sticky error is returned by every call from the moment it happens, whichever call (or
  // stream) met it first: one synchronize tells, whatever `failed` was. It also lets the work
  // already queued finish before the caller reuses its buffers.
  cudaError_t e = cudaStreamSynchronize(stream_);
  const cudaError_t last = cudaGetLastError();  // clears the failed call's own error, if any
  if (e == cudaSuccess) e = last;
  if (!is_sticky_error(e)) return failed;
  lost_ = Status::internal(
      "{}: the CUDA context is lost after {} ({}), seen at \"{}\": the GPU cannot be used again by this process; "
      "restart it",
      call, cudaGetErrorString(e), cudaGetErrorName(e), failed.message());
  return lost_;
}

Status Stream::scratch(size_t bytes, size_t n_counters, float** ws, int** counters) {
  if (bytes > ws_bytes_) {
    const size_t want = std::max(bytes, ws_bytes_ * 2);
    pool_->free(ws_, stream_);
    ws_ = nullptr;
    ws_bytes_ = 0;
    NB_ASSIGN_OR_RETURN(ws_, pool_->alloc(want, stream_));
    ws_bytes_ = want;
    ++scratch_generation_;
  }
  if (n_counters > n_counters_) {
    pool_->free(counters_, stream_);
    counters_ = nullptr;
    n_counters_ = 0;
    const size_t want = std::max<size_t>(n_counters, 4096);
    NB_ASSIGN_OR_RETURN(void* c, pool_->alloc(want * sizeof(int), stream_));
    counters_ = static_cast<int*>(c);
    n_counters_ = want;
    ++scratch_generation_;
    NB_TRY(memset(counters_, 0, want * sizeof(int)));  // kernels leave them at zero afterwards
  }
  *ws = static_cast<float*>(ws_);
  *counters = counters_;
  return Status::ok();
}

bool pdl_enabled(const Stream& s) {
  static const bool off = std::getenv("NIBBLE_NO_PDL") != nullptr;
  return !off && s.info().cc_major >= 9;
}

}  // namespace nibble::cuda

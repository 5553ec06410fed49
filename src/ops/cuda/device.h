// The device, its one memory pool and the engine's stream. Plain C++ (no kernels): the tests and
// the engine include this from .cpp files.
//
// One DevicePool per engine: every device allocation comes from it (a CUDA stream-ordered memory
// pool), and running out is a Status that says how much was asked for and how much was free.
// One Stream per engine: every op takes it, and it owns the small scratch area that split-K GEMVs
// use for partial sums.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

namespace nibble::cuda {

// What the kernels' variant choice needs to know about the device.
struct DeviceInfo {
  int device = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;  // compute capability
  int sm_count = 0;
  size_t l2_bytes = 0;
  bool hopper() const { return cc_major == 9; }
};

// Number of CUDA devices, 0 when there is none or no driver (never an error: callers skip).
int device_count();

// The errors after which this process's CUDA context cannot be used again (the runtime's docs:
// "any further CUDA work will return the same error ... the process must be terminated and
// relaunched"): a fault inside a kernel (illegal or misaligned address, illegal instruction, a
// trap, a device-side assert), a kernel timeout, uncorrectable ECC or NVLink errors. Every other
// error (a bad launch configuration, out of memory, an invalid argument) fails only its call.
bool is_sticky_error(cudaError_t e);

class DevicePool {
 public:
  static Result<std::unique_ptr<DevicePool>> create(int device = 0);
  ~DevicePool();
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  // Stream-ordered allocation of `bytes` (rounded up to 256) on `stream`.
  Result<void*> alloc(size_t bytes, cudaStream_t stream);
  void free(void* p, cudaStream_t stream);
  const DeviceInfo& info() const { return info_; }

 private:
  DevicePool() = default;
  DeviceInfo info_;
  cudaMemPool_t pool_ = nullptr;
};

class Stream {
 public:
  static Result<std::unique_ptr<Stream>> create(DevicePool& pool);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return stream_; }
  DevicePool& pool() const { return *pool_; }
  const DeviceInfo& info() const { return pool_->info(); }

  Status upload(void* dst, const void* src, size_t bytes);    // host -> device, stream-ordered
  Status download(void* dst, const void* src, size_t bytes);  // device -> host, then synchronize
  Status memset(void* dst, int value, size_t bytes);
  Status sync();

  // The first sticky error seen on this stream (is_sticky_error), as every later call on it
  // returns it; ok while the device is usable. The model and its KV caches answer with it at
  // once, so nothing runs on (or is copied back from) a dead context.
  const Status& lost() const { return lost_; }
  // After `failed` (a call's error, seen in `call`): waits for the work already queued and asks
  // the context whether it survived. A sticky error (in this call or anywhere in the process
  // since the last sync) marks the stream lost and returns a Status saying so; otherwise the
  // pending non-sticky error is cleared (the next op's launch check would report it again) and
  // `failed` comes back unchanged.
  Status settle(Status failed, std::string_view call);

  // Scratch for split-K partial sums: at least `bytes` of fp32 workspace and `n_counters` int32
  // arrival counters that start (and are always left) at zero. Grows on demand; size it before a
  // graph capture by calling once with the largest problem.
  Status scratch(size_t bytes, size_t n_counters, float** ws, int** counters);
  // Bumped whenever scratch() reallocates: a CUDA graph captured before points at freed memory.
  uint64_t scratch_generation() const { return scratch_generation_; }

 private:
  Stream() = default;
  DevicePool* pool_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* ws_ = nullptr;
  size_t ws_bytes_ = 0;
  int* counters_ = nullptr;
  size_t n_counters_ = 0;
  uint64_t scratch_generation_ = 0;
  Status lost_ = Status::ok();
};

// An owned device allocation of `count` T from the pool, freed on the stream it was made on.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  static Result<DeviceBuffer> create(Stream& s, size_t count) {
    DeviceBuffer b;
    NB_ASSIGN_OR_RETURN(void* p, s.pool().alloc(count * sizeof(T) + (count == 0), s.get()));
    b.p_ = static_cast<T*>(p);
    b.count_ = count;
    b.stream_ = &s;
    return b;
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      count_ = std::exchange(o.count_, 0);
      stream_ = std::exchange(o.stream_, nullptr);
    }
    return *this;
  }
  void reset() {
    if (p_) stream_->pool().free(p_, stream_->get());
    p_ = nullptr;
    count_ = 0;
  }
  T* get() const { return p_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* p_ = nullptr;
  size_t count_ = 0;
  Stream* stream_ = nullptr;
};

// Keeps the GPU busy for `microseconds` (benchmarks: see gpu_sleep.cu).
Status gpu_sleep(Stream& s, double microseconds);

}  // namespace nibble::cuda

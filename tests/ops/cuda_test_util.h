// Helpers shared by the CUDA op tests (tests/ops/cuda_*.cpp): one pool and stream per test
// binary (null without a GPU, so each test says it skipped), host <-> device copies, bf16
// conversions and the normalized error. Include only under NIBBLE_HAVE_CUDA.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "ops/cuda/device.h"

namespace nibble::cuda::test {

struct Gpu {
  std::unique_ptr<DevicePool> pool;
  std::unique_ptr<Stream> stream;
};
inline Gpu* gpu() {
  static Gpu* g = [] {
    auto* r = new Gpu();
    if (device_count() == 0) return r;
    auto p = DevicePool::create(0);
    if (!p) return r;
    r->pool = std::move(p.value());
    auto s = Stream::create(*r->pool);
    if (s) r->stream = std::move(s.value());
    return r;
  }();
  return g;
}
#define NB_REQUIRE_GPU()                                                                        \
  if (!::nibble::cuda::test::gpu()->stream) GTEST_SKIP() << "no CUDA device present: GPU test skipped"; \
  ::nibble::cuda::Stream& st = *::nibble::cuda::test::gpu()->stream

template <class T>
DeviceBuffer<T> to_device(Stream& s, const std::vector<T>& v) {
  auto b = DeviceBuffer<T>::create(s, v.size());
  EXPECT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_TRUE(s.upload(b.value().get(), v.data(), v.size() * sizeof(T)).is_ok());
  return std::move(b.value());
}
template <class T>
std::vector<T> to_host(Stream& s, const DeviceBuffer<T>& b) {
  std::vector<T> v(b.size());
  const Status st = s.download(v.data(), b.get(), b.bytes());
  EXPECT_TRUE(st.is_ok()) << st.message();
  return v;
}

// bf16 bits of `v`, and (optionally) the floats they widen to.
inline std::vector<uint16_t> to_bf16(const std::vector<float>& v, std::vector<float>* widened = nullptr) {
  std::vector<uint16_t> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) b[i] = f32_to_bf16(v[i]);
  if (widened) {
    widened->resize(v.size());
    for (size_t i = 0; i < v.size(); ++i) (*widened)[i] = bf16_to_f32(b[i]);
  }
  return b;
}
inline std::vector<float> widen(const std::vector<uint16_t>& b) {
  std::vector<float> v(b.size());
  for (size_t i = 0; i < b.size(); ++i) v[i] = bf16_to_f32(b[i]);
  return v;
}

// ||out - ref|| / ||ref||; infinite when any output is not finite (poisoned, never written).
inline double rel_err(const std::vector<float>& out, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    num += (static_cast<double>(out[i]) - ref[i]) * (static_cast<double>(out[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

constexpr uint16_t kBf16Nan = 0x7FC1;  // poison for bf16 outputs

// The median time in ms of `reps` calls of run() (returning Status) on the stream, each between two
// CUDA events; for the DISABLED_ benchmark tests. A failing call fails the test and returns -1.
template <class F>
double median_ms(Stream& st, F run, int reps) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    cudaEventRecord(e0, st.get());
    const Status s = run();
    cudaEventRecord(e1, st.get());
    cudaEventSynchronize(e1);
    if (!s.is_ok()) {
      ADD_FAILURE() << s.message();
      ms.assign(1, -1.0f);
      break;
    }
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    ms.push_back(t);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace nibble::cuda::test

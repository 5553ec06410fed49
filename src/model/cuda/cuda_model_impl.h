// CudaModel's state, shared by cuda_model.cpp (building it) and cuda_forward.cpp (running it).
#pragma once

#include <cuda_runtime_api.h>

#include <deque>
#include <map>
#include <optional>
#include <tuple>
#include <memory>
#include <utility>
#include <vector>

#include "model/cuda/blas.h"
#include "model/cuda/cuda_model.h"
#include "model/cuda/gpu_linear.h"
#include "ops/cuda/attention.h"
#include "ops/cuda/device.h"

namespace nibble::cuda {

struct GpuLayer {
  DeviceBuffer<uint16_t> attn_norm, ffn_norm, post_attn_norm, post_ffn_norm, q_norm, k_norm;  // bf16
  GpuLinear qkv, o, gate_up, down;  // q|k|v and gate|up stacked by rows
  DeviceBuffer<float> qkv_bias;     // [q_dim + 2 kv_dim], empty when the model has none
  DeviceBuffer<float> inv_freq;     // [head_dim / 2]
};

// Host memory the device can copy from asynchronously (the per-step metadata).
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() { if (p_) cudaFreeHost(p_); }
  Status reserve(size_t bytes) {
    if (bytes <= bytes_) return Status::ok();
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    bytes_ = 0;
    if (cudaMallocHost(&p_, bytes) != cudaSuccess) return Status::out_of_memory("pinned host buffer of {} bytes", bytes);
    bytes_ = bytes;
    return Status::ok();
  }
  uint8_t* get() const { return static_cast<uint8_t*>(p_); }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// A CUDA event without timing: marks a pipelined step's picks as copied back.
class StepEvent {
 public:
  StepEvent() = default;
  StepEvent(const StepEvent&) = delete;
  StepEvent& operator=(const StepEvent&) = delete;
  ~StepEvent() { if (e_) cudaEventDestroy(e_); }
  Status record(cudaStream_t s) {
    if (!e_ && cudaEventCreateWithFlags(&e_, cudaEventDisableTiming) != cudaSuccess)
      return Status::internal("CUDA event creation failed");
    if (const cudaError_t e = cudaEventRecord(e_, s); e != cudaSuccess)
      return Status::internal("CUDA event record failed: {}", cudaGetErrorString(e));
    return Status::ok();
  }
  cudaError_t wait() const { return cudaEventSynchronize(e_); }

 private:
  cudaEvent_t e_ = nullptr;
};

// A captured decode step: valid while the activation buffers it points into stay allocated.
struct DecodeGraph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  int seen = 0;  // eager runs so far; captured on the second (the first sizes every scratch)
  uint64_t scratch_generation = 0;  // the stream's scratch when captured
  ~DecodeGraph() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
  }
};

struct CudaModel::Impl {
  std::unique_ptr<DevicePool> pool;
  std::unique_ptr<Stream> stream;
  std::unique_ptr<Blas> blas;
  CudaOptions options;

  // Weights.
  DeviceBuffer<uint16_t> embed;     // [vocab, hidden] bf16
  DeviceBuffer<uint16_t> head_own;  // [vocab, hidden] bf16, when not tied to the embedding
  const uint16_t* lm_head = nullptr;
  DeviceBuffer<uint16_t> final_norm;
  std::vector<GpuLayer> layers;

  // Activations, sized for `cap_tokens` tokens (grown on demand; growing drops the graphs).
  int cap_tokens = 0;
  DeviceBuffer<uint16_t> x, y, hn, qkv, q, attn, gate_up, act, sel;
  DeviceBuffer<float> logits;      // [cap_tokens, vocab]
  DeviceBuffer<int32_t> next_dev;   // the picked token per logits row (argmax or sampled)
  DeviceBuffer<int32_t> chain_dev;  // the same for submitted steps: what prev_pick names
  DeviceBuffer<uint16_t> w4_scratch;  // a dequantized weight for products above 32 rows
  // Per-step metadata on the device and its pinned host staging: one copy per step. Two
  // staging halves, taken in turn, so that a submitted step's copy, still queued, never sees the
  // host write the next step's.
  DeviceBuffer<uint8_t> meta;
  PinnedBuffer meta_host[2];
  int meta_turn = 0;
  PinnedBuffer out_host;  // logits or token ids coming back

  // Pipelined steps (CudaModel::submit): each one's picks come back into the pinned half of its
  // metadata turn and its event says when. `ready` holds them once waited for early (quiesce).
  struct InFlight {
    int half = 0, rows = 0;
    std::optional<Result<std::vector<int32_t>>> ready;
  };
  std::deque<InFlight> in_flight;
  PinnedBuffer picks_host[2];
  StepEvent step_done[2];
  int chain_rows = -1;  // rows of the step submitted last, -1 when none or it failed

  // (6 x tokens + 2 x Pick + chained, block-table stride, KV storage): one graph per decode shape
  // and cache.
  using GraphKey = std::tuple<int, int, const void*>;
  std::map<GraphKey, std::unique_ptr<DecodeGraph>> graphs;

  Status ensure_tokens(const ModelConfig& c, int T);
  Status ensure_rows(const ModelConfig& c, int R);  // logits rows
  int cap_rows = 0;
  // Waits for every submitted step still running and keeps its picks (or its error) for
  // collect(): before a pinned buffer is reallocated or a synchronous call reuses the staging.
  void quiesce();
  // Waits for one submitted step and fills its `ready`.
  void finish(InFlight& f);
};

}  // namespace nibble::cuda

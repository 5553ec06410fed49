// The forward pass on one CUDA device (docs/gpu_backend.md): weights uploaded once from a
// CPU-bound Model (or generated at random for benchmarks), bf16 activations, the paged KV cache
// in device memory, and decode steps replayed from CUDA graphs.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/executor.h"
#include "model/model.h"
#include "ops/cuda/gemv_w4.h"

namespace nibble::cuda {

// How NF4 absmax sit on the GPU (docs/gpu_backend.md, "NF4 absmax"): fp16 (2 bytes a block of 64,
// each rounded to nearest: at most 2^-11 of a weight, the fastest GEMV), fp32 (4 bytes, exactly
// the file's values, or the double quantization's composed), or a double-quantized file's 1-byte
// codes kept (~1 byte a block; decodes slowest). kAuto takes fp16 when those weights fit and keeps
// the double quantization otherwise. A weight with an absmax above fp16's range keeps fp32.
enum class Nf4Scales { kAuto, kFp16, kFp32, kDoubleQuant };
// The command lines' names for it (`--nf4-scales auto|fp16|fp32|dq`); invalid_argument otherwise.
Result<Nf4Scales> parse_nf4_scales(const std::string& name);

struct CudaOptions {
  int device = 0;
  bool graphs = true;  // replay decode steps from CUDA graphs
  Nf4Scales nf4_scales = Nf4Scales::kAuto;
};

class CudaModel : public Executor {
 public:
  // Uploads every weight of `cpu` (which may be dropped afterwards). Fails with out_of_memory,
  // naming the bytes needed and free, before uploading anything when the weights cannot fit.
  static Result<std::unique_ptr<CudaModel>> create(const Model& cpu, const CudaOptions& options = {});
  // Random weights of `config`'s shape: linear layers packed in `format` (dense bf16 when empty),
  // embeddings and LM head bf16 (as bitsandbytes checkpoints keep them).
  static Result<std::unique_ptr<CudaModel>> create_random(const ModelConfig& config, std::optional<W4Format> format,
                                                          uint64_t seed, const CudaOptions& options = {});
  // Bytes create_random's weights take on the device (the memory check's figure), NF4 absmax in
  // the form `nf4` names.
  static size_t random_weight_bytes(const ModelConfig& config, std::optional<W4Format> format, Nf4Absmax nf4);
  ~CudaModel() override;

  const ModelConfig& config() const override { return config_; }
  std::string device_name() const override;
  Result<std::unique_ptr<KvCache>> make_kv_cache(int n_tokens, int block_size = 16) const override;
  Status forward(const ForwardBatch& batch, KvCache& kv, std::vector<float>& logits) const override;
  Status forward_greedy(const ForwardBatch& batch, KvCache& kv, std::vector<int32_t>& next) const override;
  // The logits stay on the device: the rows' parameters, penalty histories and draws go up with
  // the step's metadata, sample_rows (argmax_rows when every row is plain greedy) picks, and only
  // the ids come back. Decode steps sample inside their CUDA graph.
  Status forward_sample(const ForwardBatch& batch, KvCache& kv, std::span<const SampleRequest> rows,
                        std::vector<int32_t>& tokens) const override;

  // Pipelined decoding (Executor::submit; docs/engine.md): the step is enqueued and its picks
  // come back into pinned memory behind an event; prev_pick placeholders go up with the
  // metadata and the step's first kernel replaces them with the previous step's picks, which
  // stay on the device (in a buffer the synchronous calls do not write).
  Status submit(const ForwardBatch& batch, KvCache& kv, std::span<const SampleRequest> rows) const override;
  Status collect(std::vector<int32_t>& tokens) const override;
  int in_flight() const override;

  // Ok while the GPU is usable. After a sticky CUDA error (a fault inside a kernel, seen at the
  // copy back of whichever call met it first), the error that every call of this model and of the
  // KV caches it made returns at once: the context is gone and the process must restart.
  const Status& lost() const;

  // Bytes one forward step reads for its weights (every linear layer once, the LM head once, the
  // norms): the numerator of the decode roofline, KV reads excluded.
  size_t weight_stream_bytes() const;
  // Bytes the linear layers' weights occupy on the device (the LM head and norms not counted).
  size_t linear_device_bytes() const;
  // Whether some NF4 weight kept its double quantization (Nf4Scales: asked for, or the fp16 form
  // would not have fit) instead of fp16 or fp32 absmax.
  bool nf4_double_quant_kept() const;
  // The forms NF4 absmax took on the device: "fp16", "fp32", "double-quantized", joined by "+"
  // when weights differ (a weight out of fp16's range keeps fp32); empty without NF4 weights.
  std::string nf4_absmax() const;
  // "nf4", "int4", "mxfp4", "bf16", or "mixed" (what the linear layers are stored as).
  std::string weight_format() const;
  // Device-to-device copy bandwidth (bytes read + written per second) over `bytes`, measured now.
  Result<double> measure_copy_bandwidth(size_t bytes = size_t(1) << 30) const;

  struct Impl;

 private:
  CudaModel() = default;
  // What a step leaves on the device after the logits: nothing more, the argmax ids, or the
  // sampled ids (next_dev).
  enum class Pick { kLogits, kArgmax, kSample };
  // `chained`: a submitted step (its picks into chain_dev, prev_pick placeholders allowed).
  Status run(const ForwardBatch& batch, KvCache& kv, Pick pick, std::span<const SampleRequest> sample = {},
             bool chained = false) const;
  // An entry point's whole call: a lost context answers at once; run(), then the logits (kLogits)
  // or the ids copied back into `out`; a failure classified by Stream::settle under `call`.
  template <typename T>
  Status run_and_copy(const char* call, const ForwardBatch& batch, KvCache& kv, Pick pick,
                      std::span<const SampleRequest> sample, std::vector<T>& out) const;

  ModelConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nibble::cuda

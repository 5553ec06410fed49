// Models from GGUF files: ModelConfig from the metadata, tensors under their HF names, and
// ggml-quantized matrices kept in their blocks (widened row by row by the CPU matmul).
#pragma once

#include <memory>
#include <string>

#include "io/gguf.h"
#include "io/model_config.h"
#include "io/tensor_source.h"
#include "quant/quant_loader.h"

namespace nibble {

// general.architecture llama, qwen2, qwen3 or gemma3 -> ModelConfig.
Result<ModelConfig> config_from_gguf(const GgufFile& f);

// The file's tensors under HF names ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight").
// Owns the GgufFile. Dense F32/F16/BF16 tensors come out as TensorRefs; every matrix the model
// binds goes through the QuantLoader that `quant_loader()` returns.
class GgufSource : public TensorSource {
 public:
  GgufSource(GgufFile file, const ModelConfig& config);

  bool has(const std::string& name) const override;
  Result<TensorRef> get(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override { return file_.name(); }

  // Builds matrices from ggml blocks, undoing llama.cpp's Q/K row order for the `llama`
  // architecture (its converter interleaves each head's rotary halves for ggml's rope).
  std::unique_ptr<QuantLoader> quant_loader() const;
  const GgufFile& file() const { return file_; }
  // HF name -> GGUF name, or "" when the name has no GGUF counterpart.
  std::string gguf_name(const std::string& hf_name) const;

 private:
  GgufFile file_;
  std::string arch_;  // general.architecture
  bool permuted_qk_;
  int n_heads_, n_kv_heads_, head_dim_;
  friend class GgufQuantLoader;
};

}  // namespace nibble

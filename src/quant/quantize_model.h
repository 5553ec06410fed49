// `nibble quantize`: a model in, a quantized (or plain f32/bf16) HuggingFace-style folder out.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "io/tensor_source.h"

namespace nibble::quant {

struct QuantizeOptions {
  std::string format;  // nf4 | fp4 | int4 | mxfp4 | nvfp4 | fp8, or f32 | bf16 (no quantization)
  int group = 0;       // nf4/fp4: block size (default 64); int4: group (default 128, -1 per channel)
  bool double_quant = true;  // nf4/fp4 (bnb_4bit_use_double_quant), on as Linear4bit does
};

struct QuantizeReport {
  int64_t n_quantized = 0, n_kept = 0;  // tensors
  int64_t params_quantized = 0;
  size_t bytes_quantized = 0;  // packed codes + scales of the quantized matrices
  int64_t params_total = 0;    // every tensor written, in elements (quantized ones as [rows, cols])
  size_t bytes_out = 0;
};

// The format is known and the group valid for it.
Status check_quantize_options(const QuantizeOptions& opt);

// A model to quantize, wherever it came from (a HuggingFace folder, a dequantized GGUF file).
struct ModelInput {
  nlohmann::ordered_json config;  // config.json; must not hold a quantization_config
  const TensorSource* tensors = nullptr;  // HF names; F32/F16/BF16 matrices are quantized
  // Files written beside the weights, verbatim: {"tokenizer.json", text}, ...
  std::vector<std::pair<std::string, std::string>> files;
  // A folder whose tokenizer and generation files are copied (when not among `files`); "" = none.
  std::string copy_from_dir;
};

// Quantizes every Linear weight of the model (2-D ".weight" tensors except the embeddings and
// lm_head, as transformers' bitsandbytes integration chooses) and writes
// out_dir/{model.safetensors, config.json (+ quantization_config)} plus the extra files. Tensors
// that are not quantized keep their dtype. Format f32 / bf16 quantizes nothing: every float
// tensor is written in that dtype (bf16 rounds to nearest even) and config.json gets no
// quantization_config.
Result<QuantizeReport> quantize_model(const ModelInput& in, const std::string& out_dir, const QuantizeOptions& opt);

// The same for a HuggingFace model folder (config.json + safetensors + tokenizer files).
Result<QuantizeReport> quantize_model(const std::string& in_dir, const std::string& out_dir,
                                      const QuantizeOptions& opt);

}  // namespace nibble::quant

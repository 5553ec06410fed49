// `nibble quantize`: a HuggingFace model folder in, a quantized HuggingFace-style folder out.
#pragma once

#include <string>

#include "core/status.h"

namespace nibble::quant {

struct QuantizeOptions {
  std::string format;  // nf4 | fp4 | int4 | mxfp4 | nvfp4 | fp8
  int group = 0;       // nf4/fp4: block size (default 64); int4: group (default 128, -1 per channel)
  bool double_quant = true;  // nf4/fp4 (bnb_4bit_use_double_quant), on as Linear4bit does
};

struct QuantizeReport {
  int64_t n_quantized = 0, n_kept = 0;  // tensors
  int64_t params_quantized = 0;
  size_t bytes_out = 0;
};

// Quantizes every Linear weight of the model in `in_dir` (2-D ".weight" tensors except the
// embeddings and lm_head, as transformers' bitsandbytes integration chooses) and writes
// out_dir/{model.safetensors, config.json (+ quantization_config)} plus copies of the tokenizer
// and generation files.
Result<QuantizeReport> quantize_model(const std::string& in_dir, const std::string& out_dir,
                                      const QuantizeOptions& opt);

}  // namespace nibble::quant

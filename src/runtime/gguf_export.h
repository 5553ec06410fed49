// A GGUF file as the contents of a HuggingFace model folder: config.json written from the
// ModelConfig nibble derives from the metadata, tokenizer.json / tokenizer_config.json /
// generation_config.json from the tokenizer metadata, and every tensor dequantized exactly
// (ggml's own block formulas, in fp32) under its HF name and in HF row order. `nibble quantize`
// uses it to quantize a GGUF model, or to export it unquantized (--format f32).
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "io/model_config.h"
#include "io/tensor_source.h"
#include "quant/quantize_model.h"

namespace nibble {

struct GgufAsHf {
  nlohmann::ordered_json config;             // config.json
  nlohmann::ordered_json generation_config;  // bos / eos ids
  nlohmann::ordered_json tokenizer_config;   // chat template, special token strings
  std::string tokenizer_json;                // "" when the file has no tokenizer metadata
  // fp32 tensors, HF names: matrices through QuantWeight::dequant_row (so llama's Q/K rows are
  // back in HF order), vectors widened. Gemma 3 norms are stored by llama.cpp as (1 + w); they
  // come out as w, since HF's Gemma3RMSNorm adds the 1 itself.
  std::unique_ptr<TensorSource> weights;
};

// `with_weights` false: config and tokenizer files only (weights stays null).
Result<GgufAsHf> gguf_as_hf(const std::string& gguf_path, bool with_weights = true);

// config.json for `c` such that parse_model_config gives back the same forward pass (checked:
// an error names the field that cannot be expressed). Gemma 3 norms are then read as 1 + w,
// so the weights must hold w (gguf_as_hf takes the 1 off).
Result<nlohmann::ordered_json> hf_config_json(const ModelConfig& c);

// quantize_model for a .gguf file or a HuggingFace folder.
Result<quant::QuantizeReport> quantize_any(const std::string& path, const std::string& out_dir,
                                           const quant::QuantizeOptions& opt);

}  // namespace nibble

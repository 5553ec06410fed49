// The bridge between a checkpoint's quantization_config and the model's weight binding: for
// each linear weight the model asks whether it is stored quantized and, if so, gets a
// QuantWeight built from the checkpoint's tensors (bitsandbytes, GPTQ, AWQ, ...).
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "io/tensor_source.h"
#include "quant/quant_weight.h"

namespace nibble {

class QuantLoader {
 public:
  virtual ~QuantLoader() = default;
  // The weight the model binds as `name` ([rows, cols] = [out_features, in_features]), or
  // nullptr (not an error) when the checkpoint stores that one unquantized, such as lm_head.
  virtual Result<std::unique_ptr<QuantWeight>> load(const TensorSource& src, const std::string& name,
                                                    int64_t rows, int64_t cols) const = 0;
};

// The loader for config.json's quantization_config (its JSON text; "" when absent): nullptr
// for an unquantized model, an error naming the method when it is not supported.
Result<std::unique_ptr<QuantLoader>> make_quant_loader(const std::string& quantization_config,
                                                       const std::string& where);

}  // namespace nibble

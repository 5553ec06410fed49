// transformers + bitsandbytes 4-bit checkpoints: reading them (the QuantLoader for
// quant_method "bitsandbytes") and writing the same tensors (`nibble quantize --format nf4`).
//
// Per quantized Linear, Linear4bit saves (name = "<module>.weight"):
//   <name>                                    uint8 [ceil(n*k/2), 1]  packed codes (nf4.h layout)
//   <name>.absmax                             fp32 [blocks], or uint8 [blocks] when double-quantized
//   <name>.quant_map                          fp32 [16]   the 4-bit code table
//   <name>.nested_absmax                      fp32 [ceil(blocks/256)]     (double quant only)
//   <name>.nested_quant_map                   fp32 [256]  the 8-bit map   (double quant only)
//   <name>.quant_state.bitsandbytes__nf4|fp4  uint8 [len]  json.dumps() of {quant_type, blocksize,
//        dtype, shape, [nested_blocksize, nested_dtype, nested_offset]}
// Modules left unquantized (lm_head, llm_int8_skip_modules) are ordinary bf16 tensors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "quant/nf4.h"
#include "quant/quant_loader.h"
#include "quant/st_writer.h"

namespace nibble::quant {

Result<std::unique_ptr<QuantLoader>> make_bnb_loader(const nlohmann::json& qc, const std::string& where);

// The tensors Linear4bit would save for the weight `name` [rows, cols] (values w, widened from
// the checkpoint's `dtype_name`: "bfloat16", "float16" or "float32").
std::vector<OutTensor> bnb4_export(const std::string& name, const float* w, int64_t rows, int64_t cols,
                                   int blocksize, Bnb4Type type, bool double_quant,
                                   const std::string& dtype_name);

// config.json's quantization_config as transformers writes it for BitsAndBytesConfig.
std::string bnb_quantization_config_json(Bnb4Type type, bool double_quant, const std::string& compute_dtype);

// Python's repr() of a float (what json.dumps writes): shortest round-trip digits, fixed
// notation for exponents -4..15, else d.ddde+XX.
std::string python_float_repr(double v);

}  // namespace nibble::quant

// quant_method "nibble": nibble's own documented checkpoint format for MXFP4, NVFP4 and
// per-channel FP8, written by `nibble quantize` (see docs/quantization.md). Tensor names follow
// compressed-tensors' (weight_packed / weight_scale / weight_global_scale) so the files read
// naturally, but the meaning of each tensor is fixed here:
//   config.json quantization_config: {"quant_method": "nibble", "format": "mxfp4"|"nvfp4"|"fp8",
//                                     "group_size": 32|16|-1, "ignore": [...]}
//   mxfp4: P.weight_packed U8 [n, k/2] (nibble order of mxfp4.h), P.weight_scale U8 [n, k/32] (E8M0)
//   nvfp4: P.weight_packed U8 [n, k/2], P.weight_scale F8_E4M3 [n, k/16],
//          P.weight_global_scale F32 [1] (a multiplier)
//   fp8:   P.weight F8_E4M3 [n, k], P.weight_scale F32 [n, 1]
// Also the writers for every `nibble quantize` format except nf4 (bnb_import.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "quant/quant_loader.h"
#include "quant/st_writer.h"

namespace nibble::quant {

Result<std::unique_ptr<QuantLoader>> make_nibble_loader(const nlohmann::json& qc, const std::string& where);

// Tensors for module weight `name` [rows, cols] in `format` ("mxfp4", "nvfp4", "fp8", or "int4"
// = compressed-tensors pack-quantized, symmetric, `group` columns per group, scales as bf16).
Result<std::vector<OutTensor>> export_weight(const std::string& format, const std::string& name, const float* w,
                                             int64_t rows, int64_t cols, int group);

// quantization_config for `format` (the "ignore" list names the unquantized Linear modules).
std::string quantization_config_json(const std::string& format, int group, const std::vector<std::string>& ignore);

}  // namespace nibble::quant

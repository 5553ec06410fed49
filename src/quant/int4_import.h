// INT4 checkpoint importers. Each repacks its file layout into Int4Data (int4.h), keeping every
// integer code, zero point and scale exactly.
//
// GPTQ (quant_method "gptq"; AutoGPTQ / optimum / GPTQModel), per module prefix P:
//   P.qweight int32 [k/8, n]   code (k_i, n_i) = qweight[k_i / 8, n_i] >> 4*(k_i % 8) & 15
//   P.qzeros  int32 [G, n/8]   stored zero (g, n_i) = qzeros[g, n_i / 8] >> 4*(n_i % 8) & 15;
//                              checkpoint_format "gptq" (v1) means zero = stored + 1 (so 16 is
//                              possible), "gptq_v2" means zero = stored
//   P.scales  fp16  [G, n]
//   P.g_idx   int32 [k]        group of each input column (act-order permutes it); absent or
//                              k_i / group_size without act-order
// AWQ (quant_method "awq", version "gemm"), P.qweight int32 [k, n/8]: word (k_i, j) holds
//   columns 8j + {0, 2, 4, 6, 1, 3, 5, 7} in nibbles 0..7; P.qzeros int32 [G, n/8] likewise;
//   P.scales fp16 [G, n]; value = (code - zero) * scale (no +1).
// compressed-tensors pack-quantized (num_bits 4, type int, strategy group or channel):
//   P.weight_packed int32 [n, ceil(k/8)]  element (n_i, k_i) at bit 4*(k_i % 8) of word k_i / 8,
//                                          holding the signed code + 8
//   P.weight_scale  [n, G] (bf16/fp16/fp32); P.weight_zero_point int32 [ceil(n/8), G] (packed
//   along the OUTPUT dim, +8 as well; asymmetric only); P.weight_shape int [2] = {n, k};
//   P.weight_g_idx int32 [k] with act-order.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "quant/quant_loader.h"

namespace nibble::quant {

Result<std::unique_ptr<QuantLoader>> make_gptq_loader(const nlohmann::json& qc, const std::string& where);
Result<std::unique_ptr<QuantLoader>> make_awq_loader(const nlohmann::json& qc, const std::string& where);
Result<std::unique_ptr<QuantLoader>> make_compressed_tensors_loader(const nlohmann::json& qc,
                                                                   const std::string& where);

}  // namespace nibble::quant

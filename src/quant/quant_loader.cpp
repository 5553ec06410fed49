// Picks the importer for config.json's quantization_config.quant_method.
#include "quant/quant_loader.h"

#include <nlohmann/json.hpp>

#include "quant/bnb_import.h"
#include "quant/int4_import.h"
#include "quant/nibble_format.h"

namespace nibble {

Result<std::unique_ptr<QuantLoader>> make_quant_loader(const std::string& quantization_config,
                                                       const std::string& where) {
  if (quantization_config.empty()) return std::unique_ptr<QuantLoader>();
  auto j = nlohmann::json::parse(quantization_config, nullptr, false);
  if (!j.is_object()) return Status::invalid("{}: quantization_config is not a JSON object", where);
  const std::string method = j.contains("quant_method") && j["quant_method"].is_string()
                                 ? j["quant_method"].get<std::string>()
                                 : "(none given)";
  if (method == "bitsandbytes") return quant::make_bnb_loader(j, where);
  if (method == "gptq") return quant::make_gptq_loader(j, where);
  if (method == "awq") return quant::make_awq_loader(j, where);
  if (method == "compressed-tensors") return quant::make_compressed_tensors_loader(j, where);
  if (method == "nibble") return quant::make_nibble_loader(j, where);
  return Status::unsupported("{}: quantization_config.quant_method '{}' is not supported (bitsandbytes, gptq, "
                             "awq, compressed-tensors, nibble)", where, method);
}

}  // namespace nibble

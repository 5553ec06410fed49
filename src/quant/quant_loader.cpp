#include "quant/quant_loader.h"

#include <nlohmann/json.hpp>

namespace nibble {

Result<std::unique_ptr<QuantLoader>> make_quant_loader(const std::string& quantization_config,
                                                       const std::string& where) {
  if (quantization_config.empty()) return std::unique_ptr<QuantLoader>();
  auto j = nlohmann::json::parse(quantization_config, nullptr, false);
  std::string method = j.is_object() && j.contains("quant_method") && j["quant_method"].is_string()
                           ? j["quant_method"].get<std::string>()
                           : "(none given)";
  return Status::unsupported("{}: quantization_config.quant_method '{}' is not supported", where, method);
}

}  // namespace nibble

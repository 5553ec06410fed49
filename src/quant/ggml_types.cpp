#include "quant/ggml_types.h"

#include <limits>

namespace nibble {

std::optional<GgmlType> ggml_type_from_name(std::string_view name) {
  for (const auto& t : kGgmlTypes)
    if (t.name == name) return t.type;
  return std::nullopt;
}

std::optional<uint64_t> ggml_row_bytes(GgmlType t, uint64_t n) {
  const GgmlTypeInfo& info = ggml_type_info(t);
  if (n % info.block_size != 0) return std::nullopt;
  const uint64_t n_blocks = n / info.block_size;
  if (n_blocks > std::numeric_limits<uint64_t>::max() / info.type_size) return std::nullopt;
  return n_blocks * info.type_size;
}

}  // namespace nibble

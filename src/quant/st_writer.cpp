#include "quant/st_writer.h"

#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

namespace nibble::quant {

Status write_safetensors(const std::string& path, const std::vector<OutTensor>& tensors,
                         const std::string& metadata_format) {
  nlohmann::ordered_json h;
  h["__metadata__"] = {{"format", metadata_format}};
  uint64_t off = 0;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", t.st_dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.size()}}};
    off += t.size();
  }
  std::string header = h.dump();
  while (header.size() % 8) header += ' ';
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::io_error("{}: cannot open for writing", path);
  const uint64_t len = header.size();
  uint8_t len_le[8];
  for (int i = 0; i < 8; ++i) len_le[i] = static_cast<uint8_t>(len >> (8 * i));
  bool ok = std::fwrite(len_le, 1, 8, f) == 8 && std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (const auto& t : tensors)
    ok = ok && (t.size() == 0 || std::fwrite(t.bytes(), 1, t.size(), f) == t.size());
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return Status::io_error("{}: write failed", path);
  return Status::ok();
}

}  // namespace nibble::quant

// A minimal safetensors writer for `nibble quantize`: tensors in the order given, an 8-byte
// little-endian header length, the JSON header (padded with spaces to a multiple of 8 as the
// reference writer does), then the data.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace nibble::quant {

struct OutTensor {
  std::string name;
  std::string st_dtype;  // safetensors dtype name: "U8", "F32", "BF16", "I32", "F8_E4M3", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
  // Instead of `data`: bytes the caller keeps alive until the file is written (a tensor copied
  // unchanged from a memory map or an in-memory model is then not copied again).
  const uint8_t* view = nullptr;
  size_t view_size = 0;

  const uint8_t* bytes() const { return view ? view : data.data(); }
  size_t size() const { return view ? view_size : data.size(); }
};

template <typename T>
OutTensor make_out(std::string name, std::string st_dtype, std::vector<int64_t> shape, const T* v,
                   size_t n) {
  OutTensor t{std::move(name), std::move(st_dtype), std::move(shape), {}};
  t.data.resize(n * sizeof(T));
  if (n) std::memcpy(t.data.data(), v, n * sizeof(T));
  return t;
}

Status write_safetensors(const std::string& path, const std::vector<OutTensor>& tensors,
                         const std::string& metadata_format = "pt");

}  // namespace nibble::quant

// Shared checks for the checkpoint importers: every failure names the tensor and its file.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "io/tensor_source.h"

namespace nibble::quant {

// The tensor `name`, which must have dtype `dtype` and shape `shape`.
inline Result<TensorRef> get_exact(const TensorSource& src, const std::string& name, DType dtype,
                                   const std::vector<int64_t>& shape, const std::string& why = "") {
  NB_ASSIGN_OR_RETURN(TensorRef t, src.get(name));
  if (t.dtype != dtype)
    return Status::invalid("{}: tensor '{}' has dtype {}, expected {}{}", t.file, name,
                           dtype_name(t.dtype), dtype_name(dtype), why);
  if (t.shape != shape)
    return Status::invalid("{}: tensor '{}' has shape {}, expected {}{}", t.file, name,
                           shape_str(t.shape), shape_str(shape), why);
  return t;
}

// Floats of an F32/F16/BF16 tensor, widened exactly.
inline Result<std::vector<float>> read_floats(const TensorRef& t) {
  std::vector<float> out(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype) {
      case DType::kF32: {
        float v;
        std::memcpy(&v, static_cast<const char*>(t.data) + 4 * i, 4);
        out[i] = v;
        break;
      }
      case DType::kF16:
      case DType::kBF16: {
        uint16_t h;
        std::memcpy(&h, static_cast<const char*>(t.data) + 2 * i, 2);
        out[i] = t.dtype == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
        break;
      }
      default:
        return Status::unsupported("{}: tensor '{}' has dtype {}; expected f32, f16 or bf16", t.file,
                                   t.name, dtype_name(t.dtype));
    }
  }
  return out;
}

inline int32_t load_i32(const TensorRef& t, int64_t i) {
  int32_t v;
  std::memcpy(&v, static_cast<const char*>(t.data) + 4 * i, 4);
  return v;
}

// "model.layers.0.mlp.up_proj.weight" -> "model.layers.0.mlp.up_proj"
inline std::string module_prefix(const std::string& weight_name) {
  const std::string suffix = ".weight";
  if (weight_name.size() > suffix.size() &&
      weight_name.compare(weight_name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return weight_name.substr(0, weight_name.size() - suffix.size());
  return weight_name;
}

}  // namespace nibble::quant

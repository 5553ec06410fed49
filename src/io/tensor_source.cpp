#include "io/tensor_source.h"

namespace nibble {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Result<TensorRef> get_checked(const TensorSource& src, const std::string& name,
                              const std::vector<int64_t>& expected_shape) {
  NB_ASSIGN_OR_RETURN(TensorRef t, src.get(name));
  if (t.shape != expected_shape)
    return Status::invalid("{}: tensor '{}' has shape {}, expected {}", t.file, name,
                           shape_str(t.shape), shape_str(expected_shape));
  if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16)
    return Status::unsupported("{}: tensor '{}' has dtype {}; supported: f32, f16, bf16", t.file,
                               name, dtype_name(t.dtype));
  return t;
}

Result<TensorRef> TensorSource::get_shaped(const std::string& name,
                                           const std::vector<int64_t>& shape) const {
  return get_checked(*this, name, shape);
}

}  // namespace nibble

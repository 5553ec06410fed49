// Where a model's weights come from: a name -> tensor lookup that the model binds against.
// Safetensors files, GGUF files and random weights all implement it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace nibble {

struct TensorRef {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order)
  const void* data = nullptr;  // into a memory map or an owned buffer; lives as long as the source
  size_t nbytes = 0;
  std::string file;  // for error messages

  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

std::string shape_str(const std::vector<int64_t>& shape);

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual bool has(const std::string& name) const = 0;
  // An error names the tensor and where it was looked for.
  virtual Result<TensorRef> get(const std::string& name) const = 0;
  virtual std::vector<std::string> names() const = 0;
  // Where the tensors come from, for messages ("model.safetensors", "random weights").
  virtual std::string describe() const = 0;
  // The tensor the model expects under `name` with `shape`; by default get() plus
  // get_checked's checks. Random-weight sources create it here.
  virtual Result<TensorRef> get_shaped(const std::string& name,
                                       const std::vector<int64_t>& shape) const;
};

// get() plus a check of the shape the model expects and of the dtypes it can read.
Result<TensorRef> get_checked(const TensorSource& src, const std::string& name,
                              const std::vector<int64_t>& expected_shape);

}  // namespace nibble

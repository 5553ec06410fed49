// Looks weights up by name with their expected shape and records what was bound.
#pragma once

#include <set>
#include <string>

#include "io/tensor_source.h"
#include "model/model.h"

namespace nibble {

class WeightBinder {
 public:
  WeightBinder(const TensorSource& src, WeightStats& stats) : src_(src), stats_(stats) {}

  // A [rows, cols] matrix, or a vector when rows == 0 (expected shape [cols]).
  Status bind(const std::string& name, int64_t rows, int64_t cols, ops::WeightView& out);
  bool has(const std::string& name) const { return src_.has(name); }

 private:
  const TensorSource& src_;
  WeightStats& stats_;
  std::set<std::string> seen_;  // tied tensors count once
};

}  // namespace nibble

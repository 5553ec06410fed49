// Looks weights up by name with their expected shape and records what was bound.
#pragma once

#include <set>
#include <string>

#include "io/tensor_source.h"
#include "model/model.h"
#include "quant/quant_loader.h"

namespace nibble {

class WeightBinder {
 public:
  // `quant` may be null (unquantized model); quantized weights it builds go to `owned`.
  WeightBinder(const TensorSource& src, const QuantLoader* quant,
               std::vector<std::unique_ptr<QuantWeight>>& owned, WeightStats& stats)
      : src_(src), quant_(quant), owned_(owned), stats_(stats) {}

  // A [rows, cols] matrix (quantized if the checkpoint stores it so), or a vector when
  // rows == 0 (expected shape [cols]).
  Status bind(const std::string& name, int64_t rows, int64_t cols, ops::WeightView& out);
  bool has(const std::string& name) const { return src_.has(name); }

 private:
  const TensorSource& src_;
  const QuantLoader* quant_;
  std::vector<std::unique_ptr<QuantWeight>>& owned_;
  WeightStats& stats_;
  std::set<std::string> seen_;  // tied tensors count once
};

}  // namespace nibble

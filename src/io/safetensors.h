// safetensors files, memory-mapped: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end)}}, then the raw data. A model folder holds
// model.safetensors or a sharded set listed by model.safetensors.index.json.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "io/tensor_source.h"

namespace nibble {

class SafetensorsFile {
 public:
  // Validates the whole header: every tensor's dtype, shape and byte range.
  static Result<SafetensorsFile> open(const std::string& path);

  const std::map<std::string, TensorRef>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return file_->path(); }

 private:
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, TensorRef> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a model folder (single file or shards).
class SafetensorsSource : public TensorSource {
 public:
  static Result<std::unique_ptr<SafetensorsSource>> open_dir(const std::string& dir);
  static Result<std::unique_ptr<SafetensorsSource>> open_files(const std::vector<std::string>& paths);

  bool has(const std::string& name) const override { return index_.count(name) > 0; }
  Result<TensorRef> get(const std::string& name) const override;
  std::vector<std::string> names() const override;
  std::string describe() const override { return describe_; }

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, const TensorRef*> index_;
  std::string describe_;
};

}  // namespace nibble

// Helpers for the quantization tests: golden files and small checkpoints written on the fly.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "quant/st_writer.h"

namespace nibble::quant::testing {

inline std::string data_dir() { return std::string(NIBBLE_TEST_DATA) + "/quant"; }

struct Golden {
  SafetensorsFile f;
  const TensorRef& at(const std::string& name) const {
    auto it = f.tensors().find(name);
    if (it == f.tensors().end()) {
      ADD_FAILURE() << "golden tensor missing: " << name;
      static TensorRef empty;
      return empty;
    }
    return it->second;
  }
  template <typename T>
  std::vector<T> vec(const std::string& name) const {
    const TensorRef& t = at(name);
    std::vector<T> v(t.nbytes / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), t.data, t.nbytes);
    return v;
  }
};

inline Golden open_golden(const std::string& file) {
  auto f = SafetensorsFile::open(data_dir() + "/" + file);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  return Golden{std::move(*f)};
}

// A fresh temporary folder holding config.json (with `quant_config` JSON) and model.safetensors.
inline std::string write_checkpoint(const std::string& tag, const std::string& quant_config,
                                    const std::vector<OutTensor>& tensors) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("nibble_quant_test_" + tag + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  EXPECT_TRUE(write_safetensors((dir / "model.safetensors").string(), tensors).is_ok());
  std::ofstream(dir / "config.json") << "{\"quantization_config\": " << quant_config << "}\n";
  return dir.string();
}

}  // namespace nibble::quant::testing

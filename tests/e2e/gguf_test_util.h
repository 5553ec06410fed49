// Helpers for the GGUF end-to-end tests: a minimal GGUF v3 writer (so tests can derive files
// in memory instead of committing them), running the nibble binary, and model loading from
// bytes.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "model/gguf_loader.h"
#include "model/model.h"

namespace nibble::test {

// Builds a GGUF v3 file in memory (alignment 32). Keys and tensors are written in the order
// they are added.
class GgufBuilder {
 public:
  void u32(const std::string& key, uint32_t v) { scalar(key, GgufValueType::kUint32, &v, 4); }
  void f32(const std::string& key, float v) { scalar(key, GgufValueType::kFloat32, &v, 4); }
  void boolean(const std::string& key, bool v) {
    uint8_t b = v;
    scalar(key, GgufValueType::kBool, &b, 1);
  }
  void string(const std::string& key, const std::string& v) {
    head(key, GgufValueType::kString);
    str(kv_, v);
  }
  void strings(const std::string& key, const std::vector<std::string>& v) {
    head(key, GgufValueType::kArray);
    pod(kv_, static_cast<uint32_t>(GgufValueType::kString));
    pod(kv_, static_cast<uint64_t>(v.size()));
    for (const auto& s : v) str(kv_, s);
  }
  void i32s(const std::string& key, const std::vector<int32_t>& v) { array(key, GgufValueType::kInt32, v); }
  void f32s(const std::string& key, const std::vector<float>& v) { array(key, GgufValueType::kFloat32, v); }
  // Any value read from another file, arrays (nested ones included) as they were.
  void copy(const std::string& key, const GgufValue& v) {
    head(key, v.type);
    value(v);
  }

  // `data`: the tensor's bytes in ggml layout; `ne` in GGUF order (ne[0] = row length).
  void tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& ne, std::vector<uint8_t> data) {
    tensors_.push_back({name, type, ne, std::move(data)});
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> out;
    out.insert(out.end(), {'G', 'G', 'U', 'F'});
    pod(out, uint32_t{3});
    pod(out, static_cast<uint64_t>(tensors_.size()));
    pod(out, n_kv_);
    out.insert(out.end(), kv_.begin(), kv_.end());
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
      str(out, t.name);
      pod(out, static_cast<uint32_t>(t.ne.size()));
      for (int64_t d : t.ne) pod(out, static_cast<uint64_t>(d));
      pod(out, static_cast<uint32_t>(t.type));
      pod(out, offset);
      offset = align(offset + t.data.size());
    }
    out.resize(align(out.size()), 0);
    const size_t data_start = out.size();
    for (const auto& t : tensors_) {
      out.insert(out.end(), t.data.begin(), t.data.end());
      out.resize(data_start + align(out.size() - data_start), 0);
    }
    return out;
  }

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  static uint64_t align(uint64_t n) { return (n + 31) / 32 * 32; }
  template <class T>
  static void pod(std::vector<uint8_t>& out, T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }
  static void str(std::vector<uint8_t>& out, std::string_view s) {
    pod(out, static_cast<uint64_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
  }
  static size_t scalar_size(GgufValueType t) {
    switch (t) {
      case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
      case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
      case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32: return 4;
      default: return 8;
    }
  }
  void head(const std::string& key, GgufValueType t) {
    ++n_kv_;
    str(kv_, key);
    pod(kv_, static_cast<uint32_t>(t));
  }
  void scalar(const std::string& key, GgufValueType t, const void* v, size_t n) {
    head(key, t);
    const auto* p = static_cast<const uint8_t*>(v);
    kv_.insert(kv_.end(), p, p + n);
  }
  template <class T>
  void array(const std::string& key, GgufValueType elem, const std::vector<T>& v) {
    head(key, GgufValueType::kArray);
    pod(kv_, static_cast<uint32_t>(elem));
    pod(kv_, static_cast<uint64_t>(v.size()));
    for (const T& x : v) pod(kv_, x);
  }
  void array_body(const GgufArray& a) {
    pod(kv_, static_cast<uint32_t>(a.elem_type));
    pod(kv_, a.size);
    if (a.elem_type == GgufValueType::kString) {
      for (auto s : a.strings) str(kv_, s);
    } else if (a.elem_type == GgufValueType::kArray) {
      for (const auto& sub : a.arrays) array_body(sub);
    } else {
      kv_.insert(kv_.end(), a.raw, a.raw + a.size * scalar_size(a.elem_type));
    }
  }
  void value(const GgufValue& v) {
    if (v.type == GgufValueType::kString) str(kv_, v.str);
    else if (v.type == GgufValueType::kArray) array_body(v.array);
    else {
      const uint64_t bits = v.bits;  // little-endian host
      const auto* p = reinterpret_cast<const uint8_t*>(&bits);
      kv_.insert(kv_.end(), p, p + scalar_size(v.type));
    }
  }

  std::vector<uint8_t> kv_;
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
};

// A model whose GGUF bytes live in memory: the bytes outlive the model.
struct MemModel {
  std::shared_ptr<std::vector<uint8_t>> bytes;
  std::unique_ptr<Model> model;
};

inline Result<MemModel> model_from_gguf_bytes(std::vector<uint8_t> bytes, const std::string& name) {
  MemModel m{std::make_shared<std::vector<uint8_t>>(std::move(bytes)), nullptr};
  NB_ASSIGN_OR_RETURN(GgufFile f, GgufFile::from_memory(m.bytes->data(), m.bytes->size(), name));
  NB_ASSIGN_OR_RETURN(ModelConfig config, config_from_gguf(f));
  auto source = std::make_unique<GgufSource>(std::move(f), config);
  auto quant = source->quant_loader();
  NB_ASSIGN_OR_RETURN(m.model, Model::create(std::move(config), std::move(source), std::move(quant)));
  return m;
}

struct CmdResult {
  int status = -1;  // exit code
  std::string out;  // stdout and stderr together
};

// Runs `nibble ARGS` through the shell (stderr folded into the output).
inline CmdResult run_nibble(const std::string& args) {
  CmdResult r;
  const std::string cmd = std::string("'") + NIBBLE_BINARY + "' " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace nibble::test

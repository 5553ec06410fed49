// GGUF (llama.cpp's model file, versions 2 and 3): header, typed metadata and tensor table,
// read from a memory map. Tensor bytes are never copied: GgufTensor::data points into the
// mapping; decode them with src/quant/ggml_types.h. Format notes and the checks made:
// docs/gguf.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "quant/ggml_types.h"

namespace nibble {

// Metadata value types, numbered as in the file.
enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
// "uint32", "string", "array"...
std::string_view gguf_type_name(GgufValueType t);

struct GgufValue;

// An array value. Fixed-size elements stay in the file (`raw`, little-endian, unaligned);
// strings are views into the file; nested arrays are parsed recursively.
struct GgufArray {
  GgufValueType elem_type = GgufValueType::kUint8;
  uint64_t size = 0;
  const uint8_t* raw = nullptr;            // size * element bytes (fixed-size element types)
  std::vector<std::string_view> strings;   // elem_type == kString: `size` entries
  std::vector<GgufArray> arrays;           // elem_type == kArray: `size` entries

  // Element i (i < size) as a value of elem_type.
  GgufValue at(uint64_t i) const;
};

// One metadata value. Scalars keep their exact bits (zero-extended little-endian), so a float
// NaN payload or an int64 survives untouched; the accessors convert by `type`.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  uint64_t bits = 0;       // scalar types
  std::string_view str;    // kString, a view into the file
  GgufArray array;         // kArray

  bool is_integer() const;  // any of the 8 integer types
  bool is_float() const;    // float32 or float64
  uint64_t as_u64() const;  // integer types (signed ones sign-extended then reinterpreted)
  int64_t as_i64() const;   // integer types, sign-extended for the signed ones
  double as_f64() const;    // float types (f32 widened exactly) and integers (rounded)
  float as_f32() const;     // float32 exactly; other numbers rounded
  bool as_bool() const { return bits != 0; }
};

struct GgufKV {
  std::string key;
  GgufValue value;
};

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  // Two orders of the same dims, because mixing them up transposes weights:
  std::vector<int64_t> ne;     // GGUF / ggml order, fastest-varying first: ne[0] = row length
  std::vector<int64_t> shape;  // row-major (safetensors / PyTorch) order: shape.back() == ne[0]
  int64_t n_elements = 1;
  int64_t cols = 1;            // ne[0] (1 for a 0-d tensor): elements per row of blocks
  int64_t rows = 1;            // product of ne[1..]
  uint64_t offset = 0;         // from the start of the data section, a multiple of alignment
  const uint8_t* data = nullptr;  // into the file: rows * row_bytes bytes of ggml blocks
  uint64_t nbytes = 0;
  uint64_t row_bytes = 0;      // bytes of one row of cols elements

  std::string shape_str() const;  // "[rows..., cols] Q4_K" style, for messages
};

class GgufFile {
 public:
  // Memory-maps `path`; the mapping lives as long as the GgufFile (and its moved-to copies).
  static Result<GgufFile> open(const std::string& path);
  // Parses bytes the caller keeps alive for the GgufFile's lifetime; `name` is used in errors.
  static Result<GgufFile> from_memory(const uint8_t* data, size_t size, std::string name);

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // data section start in the file
  uint64_t file_size() const { return size_; }

  // ---- metadata ----
  const std::vector<GgufKV>& metadata() const { return kvs_; }  // file order
  const GgufValue* find(std::string_view key) const;           // nullptr when absent
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Strict: the stored type must be exactly the one asked for. Errors name the file, the key,
  // and the expected vs found type; a missing key is kNotFound.
  Result<uint8_t> get_u8(std::string_view key) const;
  Result<int8_t> get_i8(std::string_view key) const;
  Result<uint16_t> get_u16(std::string_view key) const;
  Result<int16_t> get_i16(std::string_view key) const;
  Result<uint32_t> get_u32(std::string_view key) const;
  Result<int32_t> get_i32(std::string_view key) const;
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<int64_t> get_i64(std::string_view key) const;
  Result<float> get_f32(std::string_view key) const;
  Result<double> get_f64(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string_view> get_string(std::string_view key) const;
  Result<const GgufArray*> get_array(std::string_view key) const;
  // An array whose elements must be of `elem` type.
  Result<const GgufArray*> get_array(std::string_view key, GgufValueType elem) const;

  // Lenient: any integer type (u64 values above INT64_MAX fail), any float type.
  Result<int64_t> get_int(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;
  // Whole arrays: integers of any width; float32 / float64 (rounded to float); strings.
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;
  Result<std::vector<float>> get_float_array(std::string_view key) const;
  Result<std::vector<std::string_view>> get_string_array(std::string_view key) const;

  // ---- tensors ----
  const std::vector<GgufTensor>& tensors() const { return tensors_; }  // file order
  const GgufTensor* find_tensor(std::string_view name) const;          // nullptr when absent
  Result<const GgufTensor*> tensor(std::string_view name) const;       // kNotFound when absent

 private:
  friend class GgufParser;
  GgufFile() = default;
  Result<const GgufValue*> typed(std::string_view key, GgufValueType t) const;

  std::shared_ptr<MappedFile> file_;  // null for from_memory
  std::string name_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKV> kvs_;
  std::vector<GgufTensor> tensors_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

// A whole tensor to float32 `out` [rows, cols] via ggml_dequantize; errors name the tensor.
// Inline so that nibble_io itself does not need nibble_quant at link time; callers (the model
// loader) link both.
inline Status dequantize_to_f32(const GgufTensor& t, float* out) {
  return ggml_dequantize(t.type, t.data, t.nbytes, t.rows, t.cols, out).with_context("tensor '" + t.name + "': ");
}

// A one-line rendering of a value for listings: strings quoted and escaped, arrays abbreviated
// to their first `max_items` elements ("[1, 2, 3, ... (32000 items)]"), strings longer than
// `max_string` bytes cut at a UTF-8 boundary ("\"{% for m in ...\"... (5123 bytes)").
std::string gguf_value_to_string(const GgufValue& v, size_t max_items = 8, size_t max_string = SIZE_MAX);

}  // namespace nibble

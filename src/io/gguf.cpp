#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <new>

namespace nibble {

static_assert(std::endian::native == std::endian::little, "GGUF v2/v3 files are read in place");

namespace {

constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;        // nested arrays; bounds recursion on hostile input
constexpr uint64_t kDefaultAlignment = 32;
// Counts are only checked against the bytes left, which for a model file include gigabytes of
// tensor data: reserve at most this many up front and let vectors grow with what is actually
// parsed (every item consumes >= 8 bytes of input, so memory stays proportional to it).
constexpr uint64_t kReserveCap = 1 << 16;

// Bytes one element of `t` occupies at least: used to refuse counts that cannot fit before
// anything is reserved.
uint64_t min_value_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kFloat64: return 8;
    case GgufValueType::kString: return 8;   // u64 length
    case GgufValueType::kArray: return 12;   // u32 type + u64 count
  }
  return 1;
}

bool is_fixed_size(GgufValueType t) { return t != GgufValueType::kString && t != GgufValueType::kArray; }
bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kFloat64); }

}  // namespace

std::string_view gguf_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: return "uint8";
    case GgufValueType::kInt8: return "int8";
    case GgufValueType::kUint16: return "uint16";
    case GgufValueType::kInt16: return "int16";
    case GgufValueType::kUint32: return "uint32";
    case GgufValueType::kInt32: return "int32";
    case GgufValueType::kFloat32: return "float32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "uint64";
    case GgufValueType::kInt64: return "int64";
    case GgufValueType::kFloat64: return "float64";
  }
  return "invalid";
}

// ---- values ----------------------------------------------------------------------------------

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kUint16:
    case GgufValueType::kInt16: case GgufValueType::kUint32: case GgufValueType::kInt32:
    case GgufValueType::kUint64: case GgufValueType::kInt64: return true;
    default: return false;
  }
}
bool GgufValue::is_float() const { return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64; }

int64_t GgufValue::as_i64() const {
  switch (type) {
    case GgufValueType::kInt8: return static_cast<int8_t>(bits);
    case GgufValueType::kInt16: return static_cast<int16_t>(bits);
    case GgufValueType::kInt32: return static_cast<int32_t>(bits);
    case GgufValueType::kInt64: return static_cast<int64_t>(bits);
    case GgufValueType::kFloat32: return static_cast<int64_t>(as_f32());
    case GgufValueType::kFloat64: return static_cast<int64_t>(as_f64());
    default: return static_cast<int64_t>(bits);
  }
}
uint64_t GgufValue::as_u64() const { return static_cast<uint64_t>(as_i64()); }

double GgufValue::as_f64() const {
  if (type == GgufValueType::kFloat64) return std::bit_cast<double>(bits);
  if (type == GgufValueType::kFloat32) return std::bit_cast<float>(static_cast<uint32_t>(bits));
  if (type == GgufValueType::kUint64) return static_cast<double>(bits);
  return static_cast<double>(as_i64());
}
float GgufValue::as_f32() const {
  if (type == GgufValueType::kFloat32) return std::bit_cast<float>(static_cast<uint32_t>(bits));
  return static_cast<float>(as_f64());
}

GgufValue GgufArray::at(uint64_t i) const {
  GgufValue v;
  v.type = elem_type;
  if (i >= size) return v;
  if (elem_type == GgufValueType::kString) {
    v.str = strings[i];
  } else if (elem_type == GgufValueType::kArray) {
    v.array = arrays[i];
  } else {
    const uint64_t n = min_value_bytes(elem_type);
    std::memcpy(&v.bits, raw + i * n, n);
  }
  return v;
}

std::string GgufTensor::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + "] " + std::string(ggml_type_name(type));
}

// ---- parser ----------------------------------------------------------------------------------

class GgufParser {
 public:
  // No exception leaves the reader: a file whose metadata is legitimately larger than memory
  // becomes a Status like any other failure.
  static Status run(GgufFile& f) {
    try {
      return GgufParser(f).parse();
    } catch (const std::bad_alloc&) {
      return Status::out_of_memory("{}: out of memory while reading the metadata", f.name_);
    }
  }

 private:
  explicit GgufParser(GgufFile& f) : f_(f), p_(f.base_), size_(f.size_) {}

  Status parse() {
    if (size_ < 4) return err("too small to be a GGUF file ({} bytes)", size_);
    if (std::memcmp(p_, "GGUF", 4) != 0)
      return err("not a GGUF file: magic is {:02x} {:02x} {:02x} {:02x}, expected 'GGUF'", p_[0], p_[1], p_[2], p_[3]);
    pos_ = 4;
    uint32_t version = 0;
    uint64_t n_tensors = 0, n_kv = 0;
    if (!read(version)) return err("truncated header (reading the version)");
    if (version == 1)
      return unsupported("GGUF v1 is not supported (32-bit counts; obsolete since 2023): re-convert the model with a current llama.cpp");
    if (version != 2 && version != 3) {
      if ((version & 0xFFFFu) == 0 && (version >> 16) != 0)
        return unsupported("big-endian GGUF (version reads as {:#x}) is not supported", version);
      return unsupported("unsupported GGUF version {} (nibble reads versions 2 and 3)", version);
    }
    f_.version_ = version;
    if (!read(n_tensors) || !read(n_kv)) return err("truncated header (reading the tensor and metadata counts)");

    // ---- metadata ----
    if (n_kv > left() / (8 + 4 + 1))
      return err("metadata count {} cannot fit in the {} bytes left after the header", n_kv, left());
    f_.kvs_.reserve(std::min(n_kv, kReserveCap));
    for (uint64_t i = 0; i < n_kv; ++i) {
      std::string_view key;
      if (Status s = read_string(key, "metadata key #", static_cast<int64_t>(i)); !s) return s;
      GgufKV kv{std::string(key), {}};
      const std::string ctx = fmt::format("metadata key '{}'", kv.key);
      uint32_t type = 0;
      if (!read(type)) return err("{}: truncated (reading the value type)", ctx);
      if (!valid_value_type(type)) return err("{}: unknown value type {}", ctx, type);
      if (Status s = read_value(static_cast<GgufValueType>(type), kv.value, ctx, 0); !s) return s;
      if (!f_.kv_index_.emplace(kv.key, f_.kvs_.size()).second) return err("duplicate {}", ctx);
      f_.kvs_.push_back(std::move(kv));
    }

    // ---- alignment ----
    f_.alignment_ = kDefaultAlignment;
    if (const GgufValue* a = f_.find("general.alignment")) {
      if (a->type != GgufValueType::kUint32)
        return err("metadata key 'general.alignment': expected uint32, found {}", gguf_type_name(a->type));
      const uint64_t al = a->bits;
      if (al == 0 || (al & (al - 1)) != 0)
        return err("metadata key 'general.alignment': {} is not a power of two", al);
      f_.alignment_ = static_cast<uint32_t>(al);
    }

    // ---- tensor infos ----
    if (n_tensors > left() / (8 + 4 + 4 + 8))
      return err("tensor count {} cannot fit in the {} bytes left after the metadata", n_tensors, left());
    f_.tensors_.reserve(std::min(n_tensors, kReserveCap));
    for (uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensor t;
      if (Status s = read_tensor_info(i, t); !s) return s;
      if (!f_.tensor_index_.emplace(t.name, f_.tensors_.size()).second)
        return err("duplicate tensor name '{}'", t.name);
      f_.tensors_.push_back(std::move(t));
    }

    // ---- data section ----
    const uint64_t al = f_.alignment_;
    f_.data_offset_ = (pos_ + al - 1) / al * al;  // pos_ <= size_ < 2^63: no overflow
    for (GgufTensor& t : f_.tensors_) {
      const uint64_t start = f_.data_offset_;
      if (start > size_ || t.offset > size_ - start || t.nbytes > size_ - start - t.offset)
        return err("tensor '{}': data [{}, +{}) past the end of the file ({} bytes; data section at {})",
                   t.name, t.offset, t.nbytes, size_, start);
      t.data = p_ + start + t.offset;
    }
    return Status::ok();
  }

  template <typename... A>
  Status err(fmt::format_string<A...> f, A&&... a) {
    return Status::invalid("{}: {}", f_.name_, fmt::format(f, std::forward<A>(a)...));
  }
  template <typename... A>
  Status unsupported(fmt::format_string<A...> f, A&&... a) {
    return Status::unsupported("{}: {}", f_.name_, fmt::format(f, std::forward<A>(a)...));
  }

  uint64_t left() const { return size_ - pos_; }

  template <typename T>
  bool read(T& v) {
    if (left() < sizeof(T)) return false;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  // `ctx` names what is read; `index` (when >= 0) is appended as "[i]". The message is only
  // formatted on failure: a vocabulary array holds ~150k strings.
  Status read_string(std::string_view& out, std::string_view ctx, int64_t index = -1) {
    uint64_t len = 0;
    const bool have_len = read(len);
    if (have_len && len <= left()) {
      out = std::string_view(reinterpret_cast<const char*>(p_ + pos_), len);
      pos_ += len;
      return Status::ok();
    }
    std::string where(ctx);  // "metadata key #3", "metadata key 'tokens'[7]"
    if (index >= 0) where += ctx.ends_with('#') ? fmt::format("{}", index) : fmt::format("[{}]", index);
    if (!have_len) return err("{}: truncated (reading a string length)", where);
    return err("{}: string of {} bytes runs past the end of the file ({} bytes left)", where, len, left());
  }

  Status read_value(GgufValueType type, GgufValue& v, const std::string& ctx, int depth) {
    v.type = type;
    if (type == GgufValueType::kString) return read_string(v.str, ctx);
    if (type == GgufValueType::kArray) return read_array(v.array, ctx, depth + 1);
    const uint64_t n = min_value_bytes(type);
    if (left() < n) return err("{}: truncated {} value", ctx, gguf_type_name(type));
    std::memcpy(&v.bits, p_ + pos_, n);
    pos_ += n;
    return Status::ok();
  }

  Status read_array(GgufArray& a, const std::string& ctx, int depth) {
    if (depth > kMaxArrayDepth) return err("{}: arrays nested deeper than {}", ctx, kMaxArrayDepth);
    uint32_t elem = 0;
    if (!read(elem) || !read(a.size)) return err("{}: truncated array header", ctx);
    if (!valid_value_type(elem)) return err("{}: array of unknown value type {}", ctx, elem);
    a.elem_type = static_cast<GgufValueType>(elem);
    const uint64_t min = min_value_bytes(a.elem_type);
    if (a.size > left() / min)
      return err("{}: array of {} {} values cannot fit in the {} bytes left", ctx, a.size,
                 gguf_type_name(a.elem_type), left());
    if (is_fixed_size(a.elem_type)) {
      a.raw = p_ + pos_;  // count checked above: size * min <= left
      pos_ += a.size * min;
    } else if (a.elem_type == GgufValueType::kString) {
      a.strings.reserve(std::min(a.size, kReserveCap));
      for (uint64_t i = 0; i < a.size; ++i) {
        std::string_view str;
        if (Status s = read_string(str, ctx, static_cast<int64_t>(i)); !s) return s;
        a.strings.push_back(str);
      }
    } else {
      a.arrays.reserve(std::min(a.size, kReserveCap));
      for (uint64_t i = 0; i < a.size; ++i) {
        GgufArray inner;
        if (Status s = read_array(inner, fmt::format("{}[{}]", ctx, i), depth + 1); !s) return s;
        a.arrays.push_back(std::move(inner));
      }
    }
    return Status::ok();
  }

  Status read_tensor_info(uint64_t index, GgufTensor& t) {
    std::string_view name;
    if (Status s = read_string(name, "tensor name #", static_cast<int64_t>(index)); !s) return s;
    t.name = std::string(name);
    const std::string ctx = fmt::format("tensor '{}'", t.name);
    uint32_t n_dims = 0;
    if (!read(n_dims)) return err("{}: truncated (reading n_dims)", ctx);
    if (n_dims > kMaxDims) return err("{}: {} dims, at most {} allowed", ctx, n_dims, kMaxDims);
    t.ne.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      if (!read(ne)) return err("{}: truncated (reading dim {})", ctx, d);
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return err("{}: dim {} = {} is out of range", ctx, d, ne);
      t.ne[d] = static_cast<int64_t>(ne);
    }
    t.shape.assign(t.ne.rbegin(), t.ne.rend());
    // rows and the element count are checked separately: with ne[0] == 0 the element count is 0
    // but the row count can still overflow.
    t.cols = n_dims ? t.ne[0] : 1;
    t.rows = 1;
    for (uint32_t d = 1; d < n_dims; ++d)
      if (__builtin_mul_overflow(t.rows, t.ne[d], &t.rows)) return err("{}: element count overflows int64", ctx);
    if (__builtin_mul_overflow(t.rows, t.cols, &t.n_elements)) return err("{}: element count overflows int64", ctx);

    uint32_t type = 0;
    if (!read(type)) return err("{}: truncated (reading the ggml type)", ctx);
    const GgmlTypeInfo* info = ggml_type_info(type);
    if (!info) return err("{}: unknown ggml type {}", ctx, type);
    t.type = info->type;
    if (t.cols % info->block_size != 0)
      return err("{}: row length {} is not a multiple of the {} block size {}", ctx, t.cols, info->name, info->block_size);
    const uint64_t blocks_per_row = static_cast<uint64_t>(t.cols) / info->block_size;
    if (__builtin_mul_overflow(blocks_per_row, uint64_t{info->type_size}, &t.row_bytes) ||
        __builtin_mul_overflow(t.row_bytes, static_cast<uint64_t>(t.rows), &t.nbytes))
      return err("{}: byte size overflows", ctx);

    if (!read(t.offset)) return err("{}: truncated (reading the data offset)", ctx);
    if (t.offset % f_.alignment_ != 0)
      return err("{}: data offset {} is not a multiple of the alignment {}", ctx, t.offset, f_.alignment_);
    return Status::ok();
  }

  GgufFile& f_;
  const uint8_t* p_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// ---- GgufFile --------------------------------------------------------------------------------

Result<GgufFile> GgufFile::open(const std::string& path) {
  NB_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(path));
  GgufFile f;
  f.file_ = std::move(mapped);
  f.name_ = path;
  f.base_ = f.file_->data();
  f.size_ = f.file_->size();
  NB_TRY(GgufParser::run(f));
  return f;
}

Result<GgufFile> GgufFile::from_memory(const uint8_t* data, size_t size, std::string name) {
  GgufFile f;
  f.name_ = std::move(name);
  f.base_ = data;
  f.size_ = data ? size : 0;
  NB_TRY(GgufParser::run(f));
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

Result<const GgufValue*> GgufFile::typed(std::string_view key, GgufValueType t) const {
  const GgufValue* v = find(key);
  if (!v) return Status::not_found("{}: metadata key '{}' not found", name_, key);
  if (v->type != t)
    return Status::invalid("{}: metadata key '{}': expected {}, found {}", name_, key, gguf_type_name(t),
                           gguf_type_name(v->type));
  return v;
}

#define NB_GGUF_GETTER(fn, T, vt)                                  \
  Result<T> GgufFile::fn(std::string_view key) const {             \
    NB_ASSIGN_OR_RETURN(const GgufValue* v, typed(key, vt));       \
    return static_cast<T>(v->bits);                                \
  }
NB_GGUF_GETTER(get_u8, uint8_t, GgufValueType::kUint8)
NB_GGUF_GETTER(get_i8, int8_t, GgufValueType::kInt8)
NB_GGUF_GETTER(get_u16, uint16_t, GgufValueType::kUint16)
NB_GGUF_GETTER(get_i16, int16_t, GgufValueType::kInt16)
NB_GGUF_GETTER(get_u32, uint32_t, GgufValueType::kUint32)
NB_GGUF_GETTER(get_i32, int32_t, GgufValueType::kInt32)
NB_GGUF_GETTER(get_u64, uint64_t, GgufValueType::kUint64)
NB_GGUF_GETTER(get_i64, int64_t, GgufValueType::kInt64)
#undef NB_GGUF_GETTER

Result<float> GgufFile::get_f32(std::string_view key) const {
  NB_ASSIGN_OR_RETURN(const GgufValue* v, typed(key, GgufValueType::kFloat32));
  return v->as_f32();
}
Result<double> GgufFile::get_f64(std::string_view key) const {
  NB_ASSIGN_OR_RETURN(const GgufValue* v, typed(key, GgufValueType::kFloat64));
  return v->as_f64();
}
Result<bool> GgufFile::get_bool(std::string_view key) const {
  NB_ASSIGN_OR_RETURN(const GgufValue* v, typed(key, GgufValueType::kBool));
  return v->as_bool();
}
Result<std::string_view> GgufFile::get_string(std::string_view key) const {
  NB_ASSIGN_OR_RETURN(const GgufValue* v, typed(key, GgufValueType::kString));
  return v->str;
}
Result<const GgufArray*> GgufFile::get_array(std::string_view key) const {
  NB_ASSIGN_OR_RETURN(const GgufValue* v, typed(key, GgufValueType::kArray));
  return &v->array;
}
Result<const GgufArray*> GgufFile::get_array(std::string_view key, GgufValueType elem) const {
  NB_ASSIGN_OR_RETURN(const GgufArray* a, get_array(key));
  if (a->elem_type != elem)
    return Status::invalid("{}: metadata key '{}': expected array of {}, found array of {}", name_, key,
                           gguf_type_name(elem), gguf_type_name(a->elem_type));
  return a;
}

Result<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return Status::not_found("{}: metadata key '{}' not found", name_, key);
  if (!v->is_integer())
    return Status::invalid("{}: metadata key '{}': expected an integer, found {}", name_, key, gguf_type_name(v->type));
  if (v->type == GgufValueType::kUint64 && v->bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return Status::invalid("{}: metadata key '{}': {} does not fit in int64", name_, key, v->bits);
  return v->as_i64();
}

Result<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return Status::not_found("{}: metadata key '{}' not found", name_, key);
  if (!v->is_float())
    return Status::invalid("{}: metadata key '{}': expected a float, found {}", name_, key, gguf_type_name(v->type));
  return v->as_f64();
}

Result<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  NB_ASSIGN_OR_RETURN(const GgufArray* a, get_array(key));
  GgufValue probe;
  probe.type = a->elem_type;
  if (!probe.is_integer())
    return Status::invalid("{}: metadata key '{}': expected array of integers, found array of {}", name_, key,
                           gguf_type_name(a->elem_type));
  std::vector<int64_t> out(a->size);
  for (uint64_t i = 0; i < a->size; ++i) {
    const GgufValue v = a->at(i);
    if (v.type == GgufValueType::kUint64 && v.bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return Status::invalid("{}: metadata key '{}'[{}]: {} does not fit in int64", name_, key, i, v.bits);
    out[i] = v.as_i64();
  }
  return out;
}

Result<std::vector<float>> GgufFile::get_float_array(std::string_view key) const {
  NB_ASSIGN_OR_RETURN(const GgufArray* a, get_array(key));
  if (a->elem_type != GgufValueType::kFloat32 && a->elem_type != GgufValueType::kFloat64)
    return Status::invalid("{}: metadata key '{}': expected array of floats, found array of {}", name_, key,
                           gguf_type_name(a->elem_type));
  std::vector<float> out(a->size);
  for (uint64_t i = 0; i < a->size; ++i) out[i] = a->at(i).as_f32();
  return out;
}

Result<std::vector<std::string_view>> GgufFile::get_string_array(std::string_view key) const {
  NB_ASSIGN_OR_RETURN(const GgufArray* a, get_array(key, GgufValueType::kString));
  return a->strings;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Result<const GgufTensor*> GgufFile::tensor(std::string_view name) const {
  const GgufTensor* t = find_tensor(name);
  if (!t) return Status::not_found("{}: tensor '{}' not found", name_, name);
  return t;
}

// ---- printing --------------------------------------------------------------------------------

static std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += fmt::format("\\{}", static_cast<char>(c));
    else if (c == '\n') out += "\\n";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out + "\"";
}

std::string gguf_value_to_string(const GgufValue& v, size_t max_items, size_t max_string) {
  switch (v.type) {
    case GgufValueType::kString: {
      if (v.str.size() <= max_string) return quote(v.str);
      size_t cut = max_string;
      while (cut > 0 && (static_cast<unsigned char>(v.str[cut]) & 0xC0) == 0x80) --cut;  // not mid-character
      return quote(v.str.substr(0, cut)) + fmt::format("... ({} bytes)", v.str.size());
    }
    case GgufValueType::kBool: return v.as_bool() ? "true" : "false";
    case GgufValueType::kFloat32: return fmt::format("{}", v.as_f32());
    case GgufValueType::kFloat64: return fmt::format("{}", v.as_f64());
    case GgufValueType::kUint64: return fmt::format("{}", v.bits);
    case GgufValueType::kArray: {
      const GgufArray& a = v.array;
      std::string s = "[";
      const uint64_t shown = std::min<uint64_t>(a.size, max_items);
      for (uint64_t i = 0; i < shown; ++i) s += (i ? ", " : "") + gguf_value_to_string(a.at(i), max_items, max_string);
      if (shown < a.size) s += fmt::format(", ... ({} items)", a.size);
      return s + "]";
    }
    default: return fmt::format("{}", v.as_i64());
  }
}

}  // namespace nibble

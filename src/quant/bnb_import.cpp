#include "quant/bnb_import.h"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "quant/import_util.h"

namespace nibble::quant {

namespace {

struct QuantState {
  Bnb4Type type = Bnb4Type::kNf4;
  int64_t blocksize = 64;
  std::vector<int64_t> shape;
  bool nested = false;
  int64_t nested_blocksize = 256;
  double nested_offset = 0;
};

Result<QuantState> parse_quant_state(const TensorRef& t, Bnb4Type type) {
  const std::string text(static_cast<const char*>(t.data), t.nbytes);
  auto j = nlohmann::json::parse(text, nullptr, false);
  auto bad = [&](const std::string& what) {
    return Status::invalid("{}: tensor '{}': {} in quant_state JSON", t.file, t.name, what);
  };
  if (!j.is_object()) return bad("not a JSON object");
  QuantState qs;
  qs.type = type;
  if (!j.contains("quant_type") || j["quant_type"] != bnb4_name(type))
    return bad(fmt::format("quant_type missing or not '{}'", bnb4_name(type)));
  if (!j.contains("blocksize") || !j["blocksize"].is_number_integer()) return bad("no integer blocksize");
  qs.blocksize = j["blocksize"].get<int64_t>();
  if (!j.contains("shape") || !j["shape"].is_array()) return bad("no shape");
  for (const auto& d : j["shape"]) {
    if (!d.is_number_integer()) return bad("non-integer shape");
    qs.shape.push_back(d.get<int64_t>());
  }
  if (j.contains("nested_blocksize")) {
    qs.nested = true;
    if (!j["nested_blocksize"].is_number_integer()) return bad("non-integer nested_blocksize");
    qs.nested_blocksize = j["nested_blocksize"].get<int64_t>();
    if (!j.contains("nested_offset") || !j["nested_offset"].is_number()) return bad("no nested_offset");
    qs.nested_offset = j["nested_offset"].get<double>();
  }
  return qs;
}

class BnbLoader : public QuantLoader {
 public:
  Result<std::unique_ptr<QuantWeight>> load(const TensorSource& src, const std::string& name,
                                            int64_t rows, int64_t cols) const override {
    Bnb4Type type;
    std::string qs_name = name + ".quant_state.bitsandbytes__nf4";
    if (src.has(qs_name)) {
      type = Bnb4Type::kNf4;
    } else {
      qs_name = name + ".quant_state.bitsandbytes__fp4";
      if (!src.has(qs_name)) return std::unique_ptr<QuantWeight>();  // stored unquantized
      type = Bnb4Type::kFp4;
    }
    NB_ASSIGN_OR_RETURN(TensorRef qs_t, src.get(qs_name));
    NB_ASSIGN_OR_RETURN(QuantState qs, parse_quant_state(qs_t, type));
    const int64_t n = rows * cols;
    if (qs.shape != std::vector<int64_t>{rows, cols})
      return Status::invalid("{}: tensor '{}': quant_state shape {} disagrees with the model's {}",
                             qs_t.file, qs_name, shape_str(qs.shape), shape_str({rows, cols}));
    if (!bnb4_blocksize_ok(qs.blocksize))
      return Status::invalid(
          "{}: tensor '{}': blocksize {} is not one bitsandbytes uses (a power of two, 32..4096)",
          qs_t.file, qs_name, qs.blocksize);
    const int64_t n_blocks = (n + qs.blocksize - 1) / qs.blocksize;
    const std::string why = fmt::format(" (quant_state: shape [{}, {}], blocksize {})", rows, cols, qs.blocksize);
    NB_ASSIGN_OR_RETURN(TensorRef packed, get_exact(src, name, DType::kU8, {(n + 1) / 2, 1}, why));
    NB_ASSIGN_OR_RETURN(TensorRef qmap, get_exact(src, name + ".quant_map", DType::kF32, {16}));
    std::array<float, 16> code;
    std::memcpy(code.data(), qmap.data, sizeof(code));
    size_t file_bytes = packed.nbytes + qs_t.nbytes + qmap.nbytes;
    std::vector<float> absmax;
    std::optional<Bnb4Nested> kept;
    if (qs.nested) {
      if (qs.nested_blocksize <= 0)
        return Status::invalid("{}: tensor '{}': nested_blocksize {} is not positive", qs_t.file,
                               qs_name, qs.nested_blocksize);
      NB_ASSIGN_OR_RETURN(TensorRef aq, get_exact(src, name + ".absmax", DType::kU8, {n_blocks}, why));
      const int64_t n_nested = (n_blocks + qs.nested_blocksize - 1) / qs.nested_blocksize;
      NB_ASSIGN_OR_RETURN(TensorRef na, get_exact(src, name + ".nested_absmax", DType::kF32, {n_nested},
                                                  fmt::format(" (nested_blocksize {})", qs.nested_blocksize)));
      NB_ASSIGN_OR_RETURN(TensorRef nmap, get_exact(src, name + ".nested_quant_map", DType::kF32, {256}));
      Bnb4Nested nd;
      const auto* aq_p = static_cast<const uint8_t*>(aq.data);
      const auto* na_p = static_cast<const float*>(na.data);
      const auto* map_p = static_cast<const float*>(nmap.data);
      nd.q = std::span<const uint8_t>(aq_p, static_cast<size_t>(n_blocks));
      nd.nested_absmax.assign(na_p, na_p + n_nested);
      nd.map.assign(map_p, map_p + 256);
      nd.offset = static_cast<float>(qs.nested_offset);
      nd.nested_blocksize = static_cast<int>(qs.nested_blocksize);
      absmax = double_dequantize(nd.q.data(), n_blocks, nd.nested_absmax.data(), nd.nested_blocksize,
                                 nd.map.data(), nd.offset);
      kept = std::move(nd);
      file_bytes += aq.nbytes + na.nbytes + nmap.nbytes;
    } else {
      NB_ASSIGN_OR_RETURN(TensorRef a, get_exact(src, name + ".absmax", DType::kF32, {n_blocks}, why));
      absmax.resize(n_blocks);
      std::memcpy(absmax.data(), a.data, n_blocks * 4);
      file_bytes += a.nbytes;
    }
    return std::unique_ptr<QuantWeight>(new Bnb4Weight(rows, cols, static_cast<int>(qs.blocksize), type,
                                                       code, static_cast<const uint8_t*>(packed.data),
                                                       std::move(absmax), file_bytes, {}, std::move(kept)));
  }
};

}  // namespace

Result<std::unique_ptr<QuantLoader>> make_bnb_loader(const nlohmann::json& qc, const std::string& where) {
  const bool in4 = (qc.contains("load_in_4bit") && qc["load_in_4bit"] == true) ||
                   (qc.contains("_load_in_4bit") && qc["_load_in_4bit"] == true);
  const bool in8 = (qc.contains("load_in_8bit") && qc["load_in_8bit"] == true);
  if (in8 || !in4)
    return Status::unsupported("{}: bitsandbytes quantization_config without load_in_4bit (8-bit "
                               "LLM.int8 checkpoints are not supported)", where);
  if (qc.contains("bnb_4bit_quant_type") && qc["bnb_4bit_quant_type"] != "nf4" &&
      qc["bnb_4bit_quant_type"] != "fp4")
    return Status::unsupported("{}: bnb_4bit_quant_type {} is not supported (nf4, fp4)", where,
                               qc["bnb_4bit_quant_type"].dump());
  // quant type, double quant and the skip list are all visible per tensor (quant_state, absmax
  // dtype, presence), so the loader trusts the tensors rather than the config.
  return std::unique_ptr<QuantLoader>(new BnbLoader());
}

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string s(buf, r.ptr);  // d.ddde+XX, shortest round-trip digits
  const bool neg = s[0] == '-';
  if (neg) s = s.substr(1);
  const size_t epos = s.find('e');
  std::string digits = s.substr(0, 1) + (epos > 2 ? s.substr(2, epos - 2) : "");
  const int exp = std::stoi(s.substr(epos + 1));
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out = "0." + std::string(-exp - 1, '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exp + 1) {
      out = digits + std::string(exp + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', std::abs(exp));
  }
  return neg ? "-" + out : out;
}

std::vector<OutTensor> bnb4_export(const std::string& name, const float* w, int64_t rows, int64_t cols,
                                   int blocksize, Bnb4Type type, bool double_quant,
                                   const std::string& dtype_name) {
  const int64_t n = rows * cols;
  Bnb4Quantized q = bnb4_quantize(w, n, blocksize, type);
  std::vector<OutTensor> out;
  out.push_back(make_out(name, "U8", {(n + 1) / 2, 1}, q.packed.data(), q.packed.size()));
  // json.dumps of the non-tensor quant_state items, in QuantState.as_dict's order.
  std::string js = fmt::format(R"({{"quant_type": "{}", "blocksize": {}, "dtype": "{}", "shape": [{}, {}])",
                               bnb4_name(type), blocksize, dtype_name, rows, cols);
  if (double_quant) {
    DoubleQuant dq = double_quantize(q.absmax, 256);
    out.push_back(make_out(name + ".absmax", "U8", {static_cast<int64_t>(dq.q.size())}, dq.q.data(), dq.q.size()));
    out.push_back(make_out(name + ".quant_map", "F32", {16}, bnb4_code(type).data(), 16));
    out.push_back(make_out(name + ".nested_absmax", "F32", {static_cast<int64_t>(dq.nested_absmax.size())},
                           dq.nested_absmax.data(), dq.nested_absmax.size()));
    out.push_back(make_out(name + ".nested_quant_map", "F32", {256}, dynamic_map_signed().data(), 256));
    js += fmt::format(R"(, "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": {})",
                      python_float_repr(static_cast<double>(dq.offset)));
  } else {
    out.push_back(make_out(name + ".absmax", "F32", {static_cast<int64_t>(q.absmax.size())}, q.absmax.data(),
                           q.absmax.size()));
    out.push_back(make_out(name + ".quant_map", "F32", {16}, bnb4_code(type).data(), 16));
  }
  js += "}";
  out.push_back(make_out(name + ".quant_state.bitsandbytes__" + bnb4_name(type), "U8",
                         {static_cast<int64_t>(js.size())}, js.data(), js.size()));
  return out;
}

std::string bnb_quantization_config_json(Bnb4Type type, bool double_quant, const std::string& compute_dtype) {
  nlohmann::ordered_json j;
  j["_load_in_4bit"] = true;
  j["_load_in_8bit"] = false;
  j["bnb_4bit_compute_dtype"] = compute_dtype;
  j["bnb_4bit_quant_storage"] = "uint8";
  j["bnb_4bit_quant_type"] = bnb4_name(type);
  j["bnb_4bit_use_double_quant"] = double_quant;
  j["llm_int8_enable_fp32_cpu_offload"] = false;
  j["llm_int8_has_fp16_weight"] = false;
  j["llm_int8_skip_modules"] = nullptr;
  j["llm_int8_threshold"] = 6.0;
  j["load_in_4bit"] = true;
  j["load_in_8bit"] = false;
  j["quant_method"] = "bitsandbytes";
  return j.dump();
}

}  // namespace nibble::quant

#include "quant/quantize_model.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "quant/bnb_import.h"
#include "quant/import_util.h"
#include "quant/nibble_format.h"

namespace nibble::quant {

namespace fs = std::filesystem;

namespace {

bool is_linear_weight(const TensorRef& t) {
  const std::string& n = t.name;
  if (t.shape.size() != 2) return false;
  if (n.size() < 7 || n.compare(n.size() - 7, 7, ".weight") != 0) return false;
  return n.find("embed") == std::string::npos && n.find("lm_head") == std::string::npos;
}

std::string torch_dtype_name(DType t) {
  switch (t) {
    case DType::kBF16: return "bfloat16";
    case DType::kF16: return "float16";
    default: return "float32";
  }
}

std::string st_dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF64: return "F64";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kI16: return "I16";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
    case DType::kBool: return "BOOL";
    case DType::kF8E4M3: return "F8_E4M3";
    case DType::kF8E5M2: return "F8_E5M2";
  }
  return "F32";
}

}  // namespace

Result<QuantizeReport> quantize_model(const std::string& in_dir, const std::string& out_dir,
                                      const QuantizeOptions& opt) {
  const std::string& f = opt.format;
  if (f != "nf4" && f != "fp4" && f != "int4" && f != "mxfp4" && f != "nvfp4" && f != "fp8")
    return Status::invalid("--format '{}' is not one of nf4, fp4, int4, mxfp4, nvfp4, fp8", f);
  const bool bnb = f == "nf4" || f == "fp4";
  int group = opt.group;
  if (bnb) {
    if (group == 0) group = 64;
    if (!bnb4_blocksize_ok(group))
      return Status::invalid("--group {}: bitsandbytes block sizes are powers of two from 32 to 4096", group);
  } else if (f == "int4" && group == 0) {
    group = 128;
  }

  std::ifstream cin(in_dir + "/config.json");
  if (!cin) return Status::not_found("{}/config.json: cannot open", in_dir);
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(cin, nullptr, false);
  if (!config.is_object()) return Status::invalid("{}/config.json: not a JSON object", in_dir);
  if (config.contains("quantization_config"))
    return Status::invalid("{}: the model is already quantized", in_dir);
  NB_ASSIGN_OR_RETURN(auto src, SafetensorsSource::open_dir(in_dir));

  QuantizeReport rep;
  std::vector<OutTensor> out;
  std::vector<std::string> ignore;
  std::string compute_dtype = "bfloat16";
  for (const std::string& name : src->names()) {
    NB_ASSIGN_OR_RETURN(TensorRef t, src->get(name));
    const bool floaty = t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16;
    if (!floaty || !is_linear_weight(t)) {
      if (name.find("lm_head") != std::string::npos) ignore.push_back(module_prefix(name));
      OutTensor o{name, st_dtype_name(t.dtype), t.shape, {}};
      o.data.assign(static_cast<const uint8_t*>(t.data), static_cast<const uint8_t*>(t.data) + t.nbytes);
      out.push_back(std::move(o));
      ++rep.n_kept;
      continue;
    }
    const int64_t rows = t.shape[0], cols = t.shape[1];
    // A matrix whose in_features the format's block does not divide stays unquantized (and is
    // listed in "ignore"), as compressed-tensors' own tools do for odd shapes.
    const int64_t need = f == "mxfp4" ? 32 : f == "nvfp4" ? 16 : (f == "int4" && group > 0) ? group : 1;
    if (cols % need != 0) {
      ignore.push_back(module_prefix(name));
      OutTensor o{name, st_dtype_name(t.dtype), t.shape, {}};
      o.data.assign(static_cast<const uint8_t*>(t.data), static_cast<const uint8_t*>(t.data) + t.nbytes);
      out.push_back(std::move(o));
      ++rep.n_kept;
      continue;
    }
    NB_ASSIGN_OR_RETURN(std::vector<float> w, read_floats(t));
    std::vector<OutTensor> q;
    if (bnb) {
      compute_dtype = torch_dtype_name(t.dtype);
      q = bnb4_export(name, w.data(), rows, cols, group, f == "nf4" ? Bnb4Type::kNf4 : Bnb4Type::kFp4,
                      opt.double_quant, torch_dtype_name(t.dtype));
    } else {
      auto r = export_weight(f, name, w.data(), rows, cols, group);
      if (!r) return r.status().with_context(src->describe() + ": ");
      q = std::move(*r);
    }
    for (auto& o : q) out.push_back(std::move(o));
    ++rep.n_quantized;
    rep.params_quantized += rows * cols;
  }

  fs::create_directories(out_dir);
  NB_TRY(write_safetensors(out_dir + "/model.safetensors", out));
  for (const auto& o : out) rep.bytes_out += o.data.size();

  const std::string qc = bnb ? bnb_quantization_config_json(f == "nf4" ? Bnb4Type::kNf4 : Bnb4Type::kFp4,
                                                            opt.double_quant, compute_dtype)
                             : quantization_config_json(f, group, ignore);
  config["quantization_config"] = nlohmann::ordered_json::parse(qc);
  std::ofstream cout(out_dir + "/config.json");
  cout << config.dump(2) << "\n";
  if (!cout) return Status::io_error("{}/config.json: write failed", out_dir);

  for (const char* extra : {"generation_config.json", "tokenizer.json", "tokenizer_config.json",
                            "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt",
                            "added_tokens.json", "chat_template.jinja", "chat_template.json"}) {
    const fs::path p = fs::path(in_dir) / extra;
    std::error_code ec;
    if (fs::exists(p)) fs::copy_file(p, fs::path(out_dir) / extra, fs::copy_options::overwrite_existing, ec);
    if (ec) return Status::io_error("{}: copy failed: {}", p.string(), ec.message());
  }
  return rep;
}

}  // namespace nibble::quant

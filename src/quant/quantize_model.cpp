#include "quant/quantize_model.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "quant/bnb_import.h"
#include "quant/import_util.h"
#include "quant/nibble_format.h"
#include "quant/st_writer.h"

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

Status check_quantize_options(const QuantizeOptions& opt) {
  const std::string& f = opt.format;
  if (f != "f32" && f != "bf16" && f != "nf4" && f != "fp4" && f != "int4" && f != "mxfp4" && f != "nvfp4" &&
      f != "fp8")
    return Status::invalid("--format '{}' is not one of nf4, fp4, int4, mxfp4, nvfp4, fp8, f32, bf16", f);
  if ((f == "nf4" || f == "fp4") && opt.group != 0 && !bnb4_blocksize_ok(opt.group))
    return Status::invalid("--group {}: bitsandbytes block sizes are powers of two from 32 to 4096", opt.group);
  return Status::ok();
}

Result<QuantizeReport> quantize_model(const ModelInput& in, const std::string& out_dir,
                                      const QuantizeOptions& opt) {
  NB_TRY(check_quantize_options(opt));
  const std::string& f = opt.format;
  const bool dense = f == "f32" || f == "bf16";
  if (!in.tensors) return Status::invalid("quantize_model: no tensors");
  const TensorSource& src = *in.tensors;
  const bool bnb = f == "nf4" || f == "fp4";
  int group = opt.group;
  if (bnb && group == 0) group = 64;
  if (f == "int4" && group == 0) group = 128;
  if (!in.config.is_object()) return Status::invalid("{}: config.json is not a JSON object", src.describe());
  if (in.config.contains("quantization_config"))
    return Status::invalid("{}: the model is already quantized", src.describe());
  nlohmann::ordered_json config = in.config;

  QuantizeReport rep;
  std::vector<OutTensor> out;
  std::vector<std::string> ignore;
  std::string compute_dtype = "bfloat16";
  // A tensor written unchanged points into the source (which outlives the write).
  auto keep = [&](const TensorRef& t) {
    OutTensor o{t.name, st_dtype_name(t.dtype), t.shape, {}};
    o.view = static_cast<const uint8_t*>(t.data);
    o.view_size = t.nbytes;
    out.push_back(std::move(o));
    ++rep.n_kept;
    rep.params_total += t.numel();
  };
  for (const std::string& name : src.names()) {
    NB_ASSIGN_OR_RETURN(TensorRef t, src.get(name));
    const bool floaty = t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16;
    if (dense) {
      const DType want = f == "f32" ? DType::kF32 : DType::kBF16;
      if (!floaty || t.dtype == want) {
        keep(t);
        continue;
      }
      NB_ASSIGN_OR_RETURN(std::vector<float> w, read_floats(t));
      if (want == DType::kF32) {
        out.push_back(make_out(name, "F32", t.shape, w.data(), w.size()));
      } else {
        std::vector<uint16_t> b(w.size());
        for (size_t i = 0; i < w.size(); ++i) b[i] = f32_to_bf16(w[i]);
        out.push_back(make_out(name, "BF16", t.shape, b.data(), b.size()));
      }
      ++rep.n_kept;
      rep.params_total += t.numel();
      continue;
    }
    if (!floaty || !is_linear_weight(t)) {
      if (name.find("lm_head") != std::string::npos) ignore.push_back(module_prefix(name));
      keep(t);
      continue;
    }
    const int64_t rows = t.shape[0], cols = t.shape[1];
    // A matrix whose in_features the format's block does not divide stays unquantized (and is
    // listed in "ignore"), as compressed-tensors' own tools do for odd shapes.
    const int64_t need = f == "mxfp4" ? 32 : f == "nvfp4" ? 16 : (f == "int4" && group > 0) ? group : 1;
    if (cols % need != 0) {
      ignore.push_back(module_prefix(name));
      keep(t);
      continue;
    }
    NB_ASSIGN_OR_RETURN(std::vector<float> w, read_floats(t));
    std::vector<OutTensor> q;
    if (bnb) {
      // bitsandbytes dequantizes to the compute dtype; from an f32 base that is float32.
      compute_dtype = torch_dtype_name(t.dtype);
      q = bnb4_export(name, w.data(), rows, cols, group, f == "nf4" ? Bnb4Type::kNf4 : Bnb4Type::kFp4,
                      opt.double_quant, torch_dtype_name(t.dtype));
    } else {
      auto r = export_weight(f, name, w.data(), rows, cols, group);
      if (!r) return r.status().with_context(src.describe() + ": ");
      q = std::move(*r);
    }
    for (auto& o : q) {
      rep.bytes_quantized += o.size();
      out.push_back(std::move(o));
    }
    ++rep.n_quantized;
    rep.params_quantized += rows * cols;
    rep.params_total += rows * cols;
  }

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return Status::io_error("{}: cannot create: {}", out_dir, ec.message());
  NB_TRY(write_safetensors(out_dir + "/model.safetensors", out));
  for (const auto& o : out) rep.bytes_out += o.size();

  if (dense) {
    config["torch_dtype"] = f == "f32" ? "float32" : "bfloat16";
    if (config.contains("dtype")) config["dtype"] = config["torch_dtype"];  // transformers 5's key
  } else {
    const std::string qc = bnb ? bnb_quantization_config_json(f == "nf4" ? Bnb4Type::kNf4 : Bnb4Type::kFp4,
                                                              opt.double_quant, compute_dtype)
                               : quantization_config_json(f, group, ignore);
    config["quantization_config"] = nlohmann::ordered_json::parse(qc);
  }
  {
    std::ofstream cout(out_dir + "/config.json");
    cout << config.dump(2) << "\n";
    if (!cout) return Status::io_error("{}/config.json: write failed", out_dir);
  }

  for (const auto& [file, text] : in.files) {
    std::ofstream o(fs::path(out_dir) / file, std::ios::binary);
    o << text;
    if (!o) return Status::io_error("{}/{}: write failed", out_dir, file);
  }
  if (!in.copy_from_dir.empty()) {
    for (const char* extra : {"generation_config.json", "tokenizer.json", "tokenizer_config.json",
                              "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt",
                              "added_tokens.json", "chat_template.jinja", "chat_template.json"}) {
      bool given = false;
      for (const auto& kv : in.files) given = given || kv.first == extra;
      const fs::path p = fs::path(in.copy_from_dir) / extra;
      if (given || !fs::exists(p)) continue;
      fs::copy_file(p, fs::path(out_dir) / extra, fs::copy_options::overwrite_existing, ec);
      if (ec) return Status::io_error("{}: copy failed: {}", p.string(), ec.message());
    }
  }
  return rep;
}

Result<QuantizeReport> quantize_model(const std::string& in_dir, const std::string& out_dir,
                                      const QuantizeOptions& opt) {
  std::ifstream cin(in_dir + "/config.json");
  if (!cin) return Status::not_found("{}/config.json: cannot open", in_dir);
  ModelInput in;
  in.config = nlohmann::ordered_json::parse(cin, nullptr, false);
  if (!in.config.is_object()) return Status::invalid("{}/config.json: not a JSON object", in_dir);
  if (in.config.contains("quantization_config"))
    return Status::invalid("{}: the model is already quantized", in_dir);
  NB_ASSIGN_OR_RETURN(auto src, SafetensorsSource::open_dir(in_dir));
  in.tensors = src.get();
  in.copy_from_dir = in_dir;
  return quantize_model(in, out_dir, opt);
}

}  // namespace nibble::quant

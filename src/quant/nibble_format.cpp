#include "quant/nibble_format.h"

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "quant/fp8.h"
#include "quant/import_util.h"
#include "quant/int4.h"
#include "quant/mxfp4.h"
#include "quant/nvfp4.h"

namespace nibble::quant {

namespace {

class NibbleLoader : public QuantLoader {
 public:
  explicit NibbleLoader(std::string format) : format_(std::move(format)) {}

  Result<std::unique_ptr<QuantWeight>> load(const TensorSource& src, const std::string& name,
                                            int64_t rows, int64_t cols) const override {
    const std::string p = module_prefix(name);
    if (format_ == "fp8") {
      if (!src.has(p + ".weight_scale")) return std::unique_ptr<QuantWeight>();
      NB_ASSIGN_OR_RETURN(TensorRef w, get_exact(src, name, DType::kF8E4M3, {rows, cols}));
      NB_ASSIGN_OR_RETURN(TensorRef s, get_exact(src, p + ".weight_scale", DType::kF32, {rows, 1}));
      return std::unique_ptr<QuantWeight>(new Fp8Weight(rows, cols, static_cast<const uint8_t*>(w.data),
                                                        static_cast<const float*>(s.data)));
    }
    if (!src.has(p + ".weight_packed")) return std::unique_ptr<QuantWeight>();
    const int block = format_ == "mxfp4" ? kMxfp4Block : kNvfp4Block;
    NB_ASSIGN_OR_RETURN(TensorRef probe, src.get(p + ".weight_packed"));
    if (cols % block != 0)
      return Status::unsupported("{}: tensor '{}': in_features {} is not a multiple of the {} block of {}",
                                 probe.file, p + ".weight_packed", cols, format_, block);
    NB_ASSIGN_OR_RETURN(TensorRef packed, get_exact(src, p + ".weight_packed", DType::kU8, {rows, cols / 2}));
    if (format_ == "mxfp4") {
      NB_ASSIGN_OR_RETURN(TensorRef s, get_exact(src, p + ".weight_scale", DType::kU8, {rows, cols / block}));
      return std::unique_ptr<QuantWeight>(new Mxfp4Weight(rows, cols, static_cast<const uint8_t*>(packed.data),
                                                          static_cast<const uint8_t*>(s.data)));
    }
    NB_ASSIGN_OR_RETURN(TensorRef s, get_exact(src, p + ".weight_scale", DType::kF8E4M3, {rows, cols / block}));
    NB_ASSIGN_OR_RETURN(TensorRef g, get_exact(src, p + ".weight_global_scale", DType::kF32, {1}));
    float global;
    std::memcpy(&global, g.data, 4);
    return std::unique_ptr<QuantWeight>(new Nvfp4Weight(rows, cols, static_cast<const uint8_t*>(packed.data),
                                                        static_cast<const uint8_t*>(s.data), global));
  }

 private:
  std::string format_;
};

}  // namespace

Result<std::unique_ptr<QuantLoader>> make_nibble_loader(const nlohmann::json& qc, const std::string& where) {
  const std::string f = qc.contains("format") && qc["format"].is_string() ? qc["format"].get<std::string>() : "";
  if (f != "mxfp4" && f != "nvfp4" && f != "fp8")
    return Status::unsupported("{}: quant_method 'nibble' format '{}' is not supported (mxfp4, nvfp4, fp8)", where, f);
  return std::unique_ptr<QuantLoader>(new NibbleLoader(f));
}

Result<std::vector<OutTensor>> export_weight(const std::string& format, const std::string& name, const float* w,
                                             int64_t rows, int64_t cols, int group) {
  const std::string p = module_prefix(name);
  std::vector<OutTensor> out;
  if (format == "mxfp4" || format == "nvfp4") {
    const int block = format == "mxfp4" ? kMxfp4Block : kNvfp4Block;
    if (cols % block != 0)
      return Status::unsupported("{}: in_features {} is not a multiple of the {} block of {}", name, cols, format, block);
    if (format == "mxfp4") {
      Mxfp4Data d = mxfp4_quantize(w, rows, cols);
      out.push_back(make_out(p + ".weight_packed", "U8", {rows, cols / 2}, d.packed.data(), d.packed.size()));
      out.push_back(make_out(p + ".weight_scale", "U8", {rows, cols / block}, d.scales.data(), d.scales.size()));
    } else {
      Nvfp4Data d = nvfp4_quantize(w, rows, cols);
      out.push_back(make_out(p + ".weight_packed", "U8", {rows, cols / 2}, d.packed.data(), d.packed.size()));
      out.push_back(make_out(p + ".weight_scale", "F8_E4M3", {rows, cols / block}, d.scales.data(), d.scales.size()));
      out.push_back(make_out(p + ".weight_global_scale", "F32", {1}, &d.global, 1));
    }
  } else if (format == "fp8") {
    Fp8Data d = fp8_quantize(w, rows, cols);
    out.push_back(make_out(name, "F8_E4M3", {rows, cols}, d.codes.data(), d.codes.size()));
    out.push_back(make_out(p + ".weight_scale", "F32", {rows, 1}, d.scales.data(), d.scales.size()));
  } else if (format == "int4") {
    if (group > 0 && cols % group != 0)
      return Status::unsupported("{}: group size {} does not divide in_features {}", name, group, cols);
    Int4Data d = int4_quantize_symmetric(w, rows, cols, group);
    // compressed-tensors pack-quantized: int32 words along k, element k_i at bit 4*(k_i % 8).
    const int64_t words = (cols + 7) / 8;
    std::vector<int32_t> packed(rows * words, 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const uint8_t b = d.codes[r * ((cols + 1) / 2) + c / 2];
        const uint32_t q = (c & 1) ? (b >> 4) : (b & 0xF);
        uint32_t& word = reinterpret_cast<uint32_t&>(packed[r * words + c / 8]);
        word |= q << (4 * (c % 8));
      }
    std::vector<uint16_t> scales(d.scales.size());
    for (size_t i = 0; i < scales.size(); ++i) scales[i] = f32_to_bf16(d.scales[i]);  // exact: already bf16
    const int64_t shape[2] = {rows, cols};
    out.push_back(make_out(p + ".weight_packed", "I32", {rows, words}, packed.data(), packed.size()));
    out.push_back(make_out(p + ".weight_scale", "BF16", {rows, d.n_groups}, scales.data(), scales.size()));
    out.push_back(make_out(p + ".weight_shape", "I64", {2}, shape, 2));
  } else {
    return Status::unsupported("unknown quantization format '{}'", format);
  }
  return out;
}

std::string quantization_config_json(const std::string& format, int group, const std::vector<std::string>& ignore) {
  nlohmann::ordered_json j;
  if (format == "int4") {
    nlohmann::ordered_json w;
    w["num_bits"] = 4;
    w["type"] = "int";
    w["symmetric"] = true;
    w["strategy"] = group > 0 ? "group" : "channel";
    w["group_size"] = group > 0 ? nlohmann::ordered_json(group) : nlohmann::ordered_json(nullptr);
    w["dynamic"] = false;
    w["actorder"] = nullptr;
    j["quant_method"] = "compressed-tensors";
    j["format"] = "pack-quantized";
    j["quantization_status"] = "compressed";
    j["config_groups"] = {{"group_0", {{"targets", {"Linear"}}, {"weights", w}, {"input_activations", nullptr}}}};
    j["ignore"] = ignore;
    return j.dump();
  }
  j["quant_method"] = "nibble";
  j["format"] = format;
  j["group_size"] = format == "mxfp4" ? 32 : format == "nvfp4" ? 16 : -1;
  j["ignore"] = ignore;
  return j.dump();
}

}  // namespace nibble::quant

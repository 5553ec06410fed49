#include "quant/int4_import.h"

#include <nlohmann/json.hpp>

#include "quant/import_util.h"
#include "quant/int4.h"
#include <algorithm>
#include <cctype>

namespace nibble::quant {

namespace {

bool group_size_ok(int64_t g) { return g == 16 || g == 32 || g == 64 || g == 128 || g == 256 || g == 512 || g == 1024; }

// The group size a checkpoint declares, checked against the matrix: -1 (or 0) = per channel.
Result<int64_t> resolve_group(int64_t declared, int64_t cols, const std::string& file, const std::string& tensor) {
  if (declared <= 0) return cols;
  if (!group_size_ok(declared))
    return Status::unsupported("{}: tensor '{}': group size {} is not supported (16..1024, powers of "
                               "two, or -1 per channel)", file, tensor, declared);
  if (cols % declared != 0)
    return Status::unsupported("{}: tensor '{}': group size {} does not divide in_features {}", file,
                               tensor, declared, cols);
  return declared;
}

void put_code(Int4Data& d, int64_t r, int64_t c, int q) {
  d.codes[r * ((d.cols + 1) / 2) + c / 2] |= (c & 1) ? static_cast<uint8_t>(q << 4) : static_cast<uint8_t>(q);
}

Int4Data empty_data(int64_t rows, int64_t cols, int64_t group) {
  Int4Data d;
  d.rows = rows;
  d.cols = cols;
  d.group_size = static_cast<int>(group);
  d.n_groups = (cols + group - 1) / group;
  d.codes.assign(rows * ((cols + 1) / 2), 0);
  d.scales.resize(rows * d.n_groups);
  d.zeros.resize(rows * d.n_groups);
  return d;
}

// g_idx: empty when it is exactly k / group (no act-order), else kept (and range-checked).
Status read_g_idx(const TensorSource& src, const std::string& name, Int4Data& d) {
  if (!src.has(name)) return Status::ok();
  NB_ASSIGN_OR_RETURN(TensorRef g, get_exact(src, name, DType::kI32, {d.cols}));
  bool trivial = true;
  std::vector<int32_t> idx(d.cols);
  for (int64_t c = 0; c < d.cols; ++c) {
    idx[c] = load_i32(g, c);
    if (idx[c] < 0 || idx[c] >= d.n_groups)
      return Status::invalid("{}: tensor '{}': g_idx[{}] = {} is outside [0, {})", g.file, name, c, idx[c],
                             d.n_groups);
    trivial &= idx[c] == c / d.group_size;
  }
  if (!trivial) d.g_idx = std::move(idx);
  return Status::ok();
}

// ---- GPTQ and AWQ share the [*, n/8] zero packing and fp16 [G, n] scales ----

class GptqAwqLoader : public QuantLoader {
 public:
  GptqAwqLoader(bool awq, int64_t group, bool v1) : awq_(awq), group_(group), v1_(v1) {}

  Result<std::unique_ptr<QuantWeight>> load(const TensorSource& src, const std::string& name,
                                            int64_t rows, int64_t cols) const override {
    const std::string p = module_prefix(name);
    if (!src.has(p + ".qweight")) return std::unique_ptr<QuantWeight>();
    NB_ASSIGN_OR_RETURN(TensorRef qw_probe, src.get(p + ".qweight"));
    NB_ASSIGN_OR_RETURN(int64_t group, resolve_group(group_, cols, qw_probe.file, p + ".qweight"));
    const int64_t n = rows, k = cols;
    if (n % 8 != 0 || k % 8 != 0)
      return Status::unsupported("{}: tensor '{}': [{}, {}] is not a multiple of 8 in both dims", qw_probe.file,
                                 p + ".qweight", n, k);
    Int4Data d = empty_data(n, k, group);
    const int64_t G = d.n_groups;
    const std::vector<int64_t> qw_shape = awq_ ? std::vector<int64_t>{k, n / 8} : std::vector<int64_t>{k / 8, n};
    NB_ASSIGN_OR_RETURN(TensorRef qw, get_exact(src, p + ".qweight", DType::kI32, qw_shape));
    NB_ASSIGN_OR_RETURN(TensorRef qz, get_exact(src, p + ".qzeros", DType::kI32, {G, n / 8}));
    NB_ASSIGN_OR_RETURN(TensorRef sc_t, src.get(p + ".scales"));
    if (sc_t.shape != std::vector<int64_t>{G, n})
      return Status::invalid("{}: tensor '{}' has shape {}, expected {} (group size {})", sc_t.file, p + ".scales",
                             shape_str(sc_t.shape), shape_str({G, n}), group);
    NB_ASSIGN_OR_RETURN(std::vector<float> sc, read_floats(sc_t));
    // AWQ's nibble j of a word holds column 8w + kOrder[j].
    static constexpr int kOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    for (int64_t ki = 0; ki < k; ++ki) {
      for (int64_t ni = 0; ni < n; ++ni) {
        int q;
        if (awq_) {
          const uint32_t w = static_cast<uint32_t>(load_i32(qw, ki * (n / 8) + ni / 8));
          int j = 0;
          while (kOrder[j] != ni % 8) ++j;
          q = (w >> (4 * j)) & 0xF;
        } else {
          const uint32_t w = static_cast<uint32_t>(load_i32(qw, (ki / 8) * n + ni));
          q = (w >> (4 * (ki % 8))) & 0xF;
        }
        put_code(d, ni, ki, q);
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t ni = 0; ni < n; ++ni) {
        const uint32_t w = static_cast<uint32_t>(load_i32(qz, g * (n / 8) + ni / 8));
        int shift;
        if (awq_) {
          int j = 0;
          while (kOrder[j] != ni % 8) ++j;
          shift = 4 * j;
        } else {
          shift = 4 * static_cast<int>(ni % 8);
        }
        const int stored = (w >> shift) & 0xF;
        d.zeros[ni * G + g] = static_cast<uint8_t>(stored + (v1_ && !awq_ ? 1 : 0));
        d.scales[ni * G + g] = sc[g * n + ni];
      }
    }
    d.symmetric = false;
    if (!awq_) NB_TRY(read_g_idx(src, p + ".g_idx", d));
    const size_t bytes = qw.nbytes + qz.nbytes + sc_t.nbytes;
    return std::unique_ptr<QuantWeight>(new Int4Weight(std::move(d), bytes, awq_ ? "awq" : "gptq"));
  }

 private:
  bool awq_;
  int64_t group_;
  bool v1_;
};

// ---- compressed-tensors pack-quantized ----

class CompressedTensorsLoader : public QuantLoader {
 public:
  CompressedTensorsLoader(int64_t group, bool symmetric) : group_(group), symmetric_(symmetric) {}

  Result<std::unique_ptr<QuantWeight>> load(const TensorSource& src, const std::string& name,
                                            int64_t rows, int64_t cols) const override {
    const std::string p = module_prefix(name);
    if (!src.has(p + ".weight_packed")) return std::unique_ptr<QuantWeight>();
    const int64_t n = rows, k = cols;
    NB_ASSIGN_OR_RETURN(TensorRef packed, src.get(p + ".weight_packed"));
    if (packed.dtype == DType::kU8)  // FP4 formats in compressed-tensors' nvfp4/mxfp4 style
      return Status::unsupported("{}: tensor '{}': uint8 weight_packed (FP4) is not a pack-quantized INT4 weight",
                                 packed.file, p + ".weight_packed");
    NB_ASSIGN_OR_RETURN(int64_t group, resolve_group(group_, k, packed.file, p + ".weight_packed"));
    Int4Data d = empty_data(n, k, group);
    const int64_t G = d.n_groups;
    const int64_t words = (k + 7) / 8;
    NB_ASSIGN_OR_RETURN(packed, get_exact(src, p + ".weight_packed", DType::kI32, {n, words}));
    if (src.has(p + ".weight_shape")) {
      NB_ASSIGN_OR_RETURN(TensorRef ws, src.get(p + ".weight_shape"));
      if (ws.numel() != 2 || (ws.dtype != DType::kI64 && ws.dtype != DType::kI32))
        return Status::invalid("{}: tensor '{}' must be 2 integers", ws.file, p + ".weight_shape");
      int64_t s[2];
      for (int i = 0; i < 2; ++i)
        s[i] = ws.dtype == DType::kI64 ? static_cast<const int64_t*>(ws.data)[i] : static_cast<const int32_t*>(ws.data)[i];
      if (s[0] != n || s[1] != k)
        return Status::invalid("{}: tensor '{}' says [{}, {}], the model expects [{}, {}]", ws.file,
                               p + ".weight_shape", s[0], s[1], n, k);
    }
    NB_ASSIGN_OR_RETURN(TensorRef sc_t, src.get(p + ".weight_scale"));
    if (sc_t.shape != std::vector<int64_t>{n, G})
      return Status::invalid("{}: tensor '{}' has shape {}, expected {} (group size {})", sc_t.file,
                             p + ".weight_scale", shape_str(sc_t.shape), shape_str({n, G}), group);
    NB_ASSIGN_OR_RETURN(std::vector<float> sc, read_floats(sc_t));
    for (int64_t ni = 0; ni < n; ++ni)
      for (int64_t ki = 0; ki < k; ++ki) {
        const uint32_t w = static_cast<uint32_t>(load_i32(packed, ni * words + ki / 8));
        put_code(d, ni, ki, (w >> (4 * (ki % 8))) & 0xF);
      }
    d.scales = std::move(sc);
    size_t bytes = packed.nbytes + sc_t.nbytes;
    const bool has_zp = src.has(p + ".weight_zero_point");
    if (!symmetric_ || has_zp) {
      NB_ASSIGN_OR_RETURN(TensorRef zp, get_exact(src, p + ".weight_zero_point", DType::kI32, {(n + 7) / 8, G}));
      for (int64_t ni = 0; ni < n; ++ni)
        for (int64_t g = 0; g < G; ++g) {
          const uint32_t w = static_cast<uint32_t>(load_i32(zp, (ni / 8) * G + g));
          d.zeros[ni * G + g] = static_cast<uint8_t>((w >> (4 * (ni % 8))) & 0xF);
        }
      d.symmetric = false;
      bytes += zp.nbytes;
    } else {
      std::fill(d.zeros.begin(), d.zeros.end(), 8);  // signed codes: (u - 8) - 0
    }
    NB_TRY(read_g_idx(src, p + ".weight_g_idx", d));
    return std::unique_ptr<QuantWeight>(new Int4Weight(std::move(d), bytes, "compressed-tensors"));
  }

 private:
  int64_t group_;
  bool symmetric_;
};

int64_t json_int(const nlohmann::json& j, const char* key, int64_t dflt) {
  return j.contains(key) && j[key].is_number_integer() ? j[key].get<int64_t>() : dflt;
}

}  // namespace

Result<std::unique_ptr<QuantLoader>> make_gptq_loader(const nlohmann::json& qc, const std::string& where) {
  const int64_t bits = json_int(qc, "bits", 4);
  if (bits != 4) return Status::unsupported("{}: GPTQ bits {} is not supported (4 only)", where, bits);
  const std::string fmt_name = qc.contains("checkpoint_format") && qc["checkpoint_format"].is_string()
                                   ? qc["checkpoint_format"].get<std::string>()
                                   : "gptq";
  if (fmt_name != "gptq" && fmt_name != "gptq_v2")
    return Status::unsupported("{}: GPTQ checkpoint_format '{}' is not supported (gptq, gptq_v2)", where, fmt_name);
  return std::unique_ptr<QuantLoader>(new GptqAwqLoader(false, json_int(qc, "group_size", 128), fmt_name == "gptq"));
}

Result<std::unique_ptr<QuantLoader>> make_awq_loader(const nlohmann::json& qc, const std::string& where) {
  const int64_t bits = json_int(qc, "bits", json_int(qc, "w_bit", 4));
  if (bits != 4) return Status::unsupported("{}: AWQ bits {} is not supported (4 only)", where, bits);
  std::string version = qc.contains("version") && qc["version"].is_string() ? qc["version"].get<std::string>() : "gemm";
  for (auto& ch : version) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (version != "gemm")
    return Status::unsupported("{}: AWQ version '{}' is not supported (gemm)", where, version);
  if (qc.contains("zero_point") && qc["zero_point"] == false)
    return Status::unsupported("{}: AWQ without zero points is not supported", where);
  const int64_t group = json_int(qc, "group_size", json_int(qc, "q_group_size", 128));
  return std::unique_ptr<QuantLoader>(new GptqAwqLoader(true, group, false));
}

Result<std::unique_ptr<QuantLoader>> make_compressed_tensors_loader(const nlohmann::json& qc,
                                                                   const std::string& where) {
  const std::string format = qc.contains("format") && qc["format"].is_string() ? qc["format"].get<std::string>() : "";
  if (format != "pack-quantized")
    return Status::unsupported("{}: compressed-tensors format '{}' is not supported (pack-quantized)", where, format);
  if (!qc.contains("config_groups") || !qc["config_groups"].is_object() || qc["config_groups"].size() != 1)
    return Status::unsupported("{}: compressed-tensors needs exactly one config group", where);
  const auto& grp = qc["config_groups"].begin().value();
  if (!grp.contains("weights") || !grp["weights"].is_object())
    return Status::invalid("{}: compressed-tensors config group without 'weights'", where);
  const auto& w = grp["weights"];
  const int64_t bits = json_int(w, "num_bits", 0);
  const std::string type = w.contains("type") && w["type"].is_string() ? w["type"].get<std::string>() : "";
  if (bits != 4 || type != "int")
    return Status::unsupported("{}: compressed-tensors weights num_bits {} type '{}' are not supported (4, int)",
                               where, bits, type);
  const std::string strategy = w.contains("strategy") && w["strategy"].is_string() ? w["strategy"].get<std::string>() : "";
  int64_t group;
  if (strategy == "group") {
    group = json_int(w, "group_size", 128);
  } else if (strategy == "channel") {
    group = -1;
  } else {
    return Status::unsupported("{}: compressed-tensors strategy '{}' is not supported (group, channel)", where,
                               strategy);
  }
  const bool symmetric = !w.contains("symmetric") || w["symmetric"] != false;
  return std::unique_ptr<QuantLoader>(new CompressedTensorsLoader(group, symmetric));
}

}  // namespace nibble::quant

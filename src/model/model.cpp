// Loading: config, weight source, per-family binding, RoPE tables.
#include "model/model.h"

#include <cmath>
#include <numbers>

#include <filesystem>

#include "core/progress.h"
#include "io/safetensors.h"
#include "model/gguf_loader.h"
#include "model/weight_binder.h"

namespace nibble {

Status WeightBinder::bind(const std::string& name, int64_t rows, int64_t cols, ops::WeightView& out) {
  if (quant_ && rows > 0) {
    NB_ASSIGN_OR_RETURN(std::unique_ptr<QuantWeight> q, quant_->load(src_, name, rows, cols));
    if (q) {
      out = ops::WeightView{DType::kF32, rows, cols, nullptr, q.get()};
      if (seen_.insert(name).second) {
        stats_.n_params += rows * cols;
        stats_.n_bytes += q->nbytes();
        stats_.params_by_dtype[q->format_name()] += rows * cols;
      }
      owned_.push_back(std::move(q));
      return Status::ok();
    }
  }
  std::vector<int64_t> shape = rows > 0 ? std::vector<int64_t>{rows, cols} : std::vector<int64_t>{cols};
  NB_ASSIGN_OR_RETURN(TensorRef t, src_.get_shaped(name, shape));
  out.dtype = t.dtype;
  out.rows = rows > 0 ? rows : 1;
  out.cols = cols;
  out.data = t.data;
  if (seen_.insert(name).second) {
    stats_.n_params += t.numel();
    stats_.n_bytes += t.nbytes;
    stats_.params_by_dtype[std::string(dtype_name(t.dtype))] += t.numel();
  }
  return Status::ok();
}

std::vector<float> rope_inv_freq(const RopeConfig& rope, int head_dim) {
  const int half = head_dim / 2;
  std::vector<float> out(half);
  for (int i = 0; i < half; ++i) {
    // transformers: 1 / theta^(2i / d), computed in fp32 there; double here, rounded once.
    double f = 1.0 / std::pow(rope.theta, 2.0 * i / head_dim);
    switch (rope.type) {
      case RopeType::kDefault:
        break;
      case RopeType::kLinear:
        f /= rope.factor;
        break;
      case RopeType::kLlama3: {
        // Llama 3.1: long wavelengths divided by `factor`, short ones kept, a smooth blend
        // between high_freq_wavelen and low_freq_wavelen.
        const double low_wavelen = rope.original_max_position / rope.low_freq_factor;
        const double high_wavelen = rope.original_max_position / rope.high_freq_factor;
        const double wavelen = 2 * std::numbers::pi / f;
        if (wavelen > low_wavelen) {
          f /= rope.factor;
        } else if (wavelen >= high_wavelen) {
          const double smooth = (rope.original_max_position / wavelen - rope.low_freq_factor) /
                                (rope.high_freq_factor - rope.low_freq_factor);
          f = (1 - smooth) * f / rope.factor + smooth * f;
        }
        break;
      }
    }
    if (!rope.freq_factors.empty()) f /= rope.freq_factors[i];
    out[i] = static_cast<float>(f);
  }
  return out;
}

Result<std::unique_ptr<Model>> Model::create(ModelConfig config, std::unique_ptr<TensorSource> source,
                                             std::unique_ptr<QuantLoader> quant) {
  std::unique_ptr<Model> m(new Model());
  m->config_ = std::move(config);
  m->source_ = std::move(source);
  if (!quant) {
    NB_ASSIGN_OR_RETURN(quant, make_quant_loader(m->config_.quantization_config, "config.json"));
  }
  WeightBinder binder(*m->source_, quant.get(), m->quant_weights_, m->stats_);
  switch (m->config_.family) {
    case ArchFamily::kLlama:
      NB_TRY(bind_llama_family(m->config_, binder, m->w_));
      break;
    case ArchFamily::kGemma3:
      NB_TRY(bind_gemma3(m->config_, binder, m->w_));
      break;
  }
  for (const auto& layer : m->config_.layers)
    m->inv_freq_.push_back(rope_inv_freq(layer.rope, m->config_.head_dim));
  return m;
}

Result<std::unique_ptr<Model>> Model::load(const std::string& dir, const LoadOptions& options) {
  if (dir.ends_with(".gguf") && !std::filesystem::is_directory(dir)) {
    NB_ASSIGN_OR_RETURN(GgufFile file, GgufFile::open(dir));
    NB_ASSIGN_OR_RETURN(ModelConfig config, config_from_gguf(file));
    if (options.prefault) {
      std::vector<std::pair<const void*, size_t>> ranges;
      for (const auto& t : file.tensors()) ranges.emplace_back(t.data, t.nbytes);
      prefault_mapped(std::move(ranges), "loading " + dir);
    }
    // llama.cpp keeps the `llama` architecture's Q/K rows in the converter's interleaved order
    // (nibble un-interleaves them at load); its attention sums q.k in that order.
    auto arch = file.get_string("general.architecture");
    const bool interleaved = arch.is_ok() && arch.value() == "llama";
    auto source = std::make_unique<GgufSource>(std::move(file), config);
    auto quant = source->quant_loader();
    NB_ASSIGN_OR_RETURN(std::unique_ptr<Model> m, create(std::move(config), std::move(source), std::move(quant)));
    m->numerics_ = options.numerics;
    m->interleaved_qk_ = interleaved;
    return m;
  }
  NB_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(dir));
  NB_ASSIGN_OR_RETURN(auto source, SafetensorsSource::open_dir(dir));
  // Pre-fault large weight files (with a progress bar on a terminal) so that the first forward
  // pass does not stall on page faults.
  if (options.prefault) {
    std::vector<std::pair<const void*, size_t>> ranges;
    for (const auto& name : source->names())
      if (auto t = source->get(name); t.is_ok()) ranges.emplace_back(t->data, t->nbytes);
    prefault_mapped(std::move(ranges), "loading " + dir);
  }
  NB_ASSIGN_OR_RETURN(std::unique_ptr<Model> m, create(std::move(config), std::move(source)));
  m->numerics_ = options.numerics;
  return m;
}

std::unique_ptr<KvCache> Model::make_cache(int n_tokens, int block_size) const {
  ops::KvLayout layout{block_size, config_.n_kv_heads, config_.head_dim};
  const int n_blocks = (n_tokens + block_size - 1) / block_size;
  return std::make_unique<KvCache>(config_.n_layers, n_blocks, layout);
}

}  // namespace nibble

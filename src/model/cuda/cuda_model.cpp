// Building a CudaModel: the device, the upload of a CPU-bound model's weights (or random ones),
// the memory check that comes first, and the KV cache.
#include "model/cuda/cuda_model.h"

#include <cuda_runtime_api.h>

#include "core/dtype.h"
#include "core/progress.h"
#include "model/cuda/cuda_kv_cache.h"
#include "model/cuda/cuda_model_impl.h"

namespace nibble::cuda {
namespace {

constexpr double kGiB = 1073741824.0;

Result<DeviceBuffer<uint16_t>> constant_bf16(size_t n, float value, Stream& s) {
  return to_device(std::vector<uint16_t>(n, f32_to_bf16(value)), s);
}

Status check_fits(size_t bytes, const Stream& s, const char* what) {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return Status::ok();  // the allocations will say
  // Leave room for activations, cuBLAS and the KV cache's first blocks.
  if (bytes + (size_t(256) << 20) > free_b)
    return Status::out_of_memory("{} needs {:.2f} GiB on {} ({:.2f} GiB free of {:.2f} GiB)", what, bytes / kGiB,
                                 s.info().name, free_b / kGiB, total_b / kGiB);
  return Status::ok();
}

// The NF4 absmax form asked for (Nf4Scales); kAuto: fp16, unless the weights in that form,
// `need_fp16` bytes, would not fit, then the file's double quantization kept.
Nf4Absmax nf4_absmax_form(const CudaOptions& o, size_t need_fp16, const Stream& s) {
  switch (o.nf4_scales) {
    case Nf4Scales::kFp16: return Nf4Absmax::kFp16;
    case Nf4Scales::kFp32: return Nf4Absmax::kFp32;
    case Nf4Scales::kDoubleQuant: return Nf4Absmax::kNested;
    case Nf4Scales::kAuto: break;
  }
  return check_fits(need_fp16, s, "").is_ok() ? Nf4Absmax::kFp16 : Nf4Absmax::kNested;
}

Result<std::unique_ptr<CudaModel::Impl>> make_impl(const CudaOptions& o) {
  auto impl = std::make_unique<CudaModel::Impl>();
  impl->options = o;
  NB_ASSIGN_OR_RETURN(impl->pool, DevicePool::create(o.device));
  NB_ASSIGN_OR_RETURN(impl->stream, Stream::create(*impl->pool));
  NB_ASSIGN_OR_RETURN(impl->blas, Blas::create(*impl->stream));
  return impl;
}

}  // namespace

Result<Nf4Scales> parse_nf4_scales(const std::string& name) {
  if (name == "auto") return Nf4Scales::kAuto;
  if (name == "fp16") return Nf4Scales::kFp16;
  if (name == "fp32") return Nf4Scales::kFp32;
  if (name == "dq") return Nf4Scales::kDoubleQuant;
  return Status::invalid("--nf4-scales must be auto, fp16, fp32 or dq, got '{}'", name);
}

CudaModel::~CudaModel() = default;

std::string CudaModel::device_name() const { return impl_->pool->info().name; }

Result<std::unique_ptr<CudaModel>> CudaModel::create(const Model& cpu, const CudaOptions& options) {
  std::unique_ptr<CudaModel> m(new CudaModel());
  m->config_ = cpu.config();
  const ModelConfig& c = m->config_;
  NB_ASSIGN_OR_RETURN(m->impl_, make_impl(options));
  Impl& st = *m->impl_;
  Stream& s = *st.stream;
  const ModelWeights& w = cpu.weights();
  const bool tied = w.lm_head.data == w.embed.data && w.lm_head.quant == w.embed.quant;

  // What it will take, before anything is uploaded; double-quantized NF4 kept as it is when
  // its absmax as fp16 would not fit (Nf4Scales).
  auto need = [&](Nf4Absmax nf4) {
    size_t b = static_cast<size_t>(c.vocab_size) * c.hidden_size * 2 * (tied ? 1 : 2);
    for (const LayerWeights& L : w.layers) {
      const ops::WeightView* lin[] = {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down};
      b += GpuLinear::device_bytes(lin, nf4);
    }
    return b;
  };
  const Nf4Absmax nf4 = nf4_absmax_form(options, need(Nf4Absmax::kFp16), s);
  NB_TRY(check_fits(need(nf4), s, "the model's weights"));

  NB_ASSIGN_OR_RETURN(st.embed, upload_bf16(w.embed, s));
  if (tied) {
    st.lm_head = st.embed.get();
  } else {
    // Kept dense: the LM head is bf16 in bitsandbytes checkpoints, and its fp32 logits come from cuBLAS.
    NB_ASSIGN_OR_RETURN(st.head_own, upload_bf16(w.lm_head, s));
    st.lm_head = st.head_own.get();
  }
  NB_ASSIGN_OR_RETURN(st.final_norm, upload_bf16(w.final_norm, s));

  ProgressBar progress("uploading to " + s.info().name, c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[l];
    GpuLayer g;
    NB_ASSIGN_OR_RETURN(g.attn_norm, upload_bf16(L.attn_norm, s));
    NB_ASSIGN_OR_RETURN(g.ffn_norm, upload_bf16(L.ffn_norm, s));
    if (c.sandwich_norms) {
      NB_ASSIGN_OR_RETURN(g.post_attn_norm, upload_bf16(L.post_attn_norm, s));
      NB_ASSIGN_OR_RETURN(g.post_ffn_norm, upload_bf16(L.post_ffn_norm, s));
    }
    if (c.qk_norm) {
      NB_ASSIGN_OR_RETURN(g.q_norm, upload_bf16(L.q_norm, s));
      NB_ASSIGN_OR_RETURN(g.k_norm, upload_bf16(L.k_norm, s));
    }
    const ops::WeightView* qkv[] = {&L.q, &L.k, &L.v};
    const ops::WeightView* o[] = {&L.o};
    const ops::WeightView* gate_up[] = {&L.gate, &L.up};
    const ops::WeightView* down[] = {&L.down};
    NB_ASSIGN_OR_RETURN(g.qkv, GpuLinear::upload(qkv, s, /*glu=*/false, nf4));
    NB_ASSIGN_OR_RETURN(g.o, GpuLinear::upload(o, s, /*glu=*/false, nf4));
    NB_ASSIGN_OR_RETURN(g.gate_up, GpuLinear::upload(gate_up, s, /*glu=*/true, nf4));
    NB_ASSIGN_OR_RETURN(g.down, GpuLinear::upload(down, s, /*glu=*/false, nf4));
    if (!L.q_bias.empty()) {
      std::vector<float> bias;
      for (const ops::WeightView* b : {&L.q_bias, &L.k_bias, &L.v_bias}) {
        NB_ASSIGN_OR_RETURN(std::vector<float> part, weight_as_f32(*b));
        bias.insert(bias.end(), part.begin(), part.end());
      }
      NB_ASSIGN_OR_RETURN(g.qkv_bias, to_device(bias, s));
    }
    NB_ASSIGN_OR_RETURN(g.inv_freq, to_device(cpu.inv_freq(l), s));
    st.layers.push_back(std::move(g));
    progress.update(l + 1);
  }
  progress.finish();
  return m;
}

size_t CudaModel::random_weight_bytes(const ModelConfig& c, std::optional<W4Format> format, Nf4Absmax nf4) {
  const double h = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), f = c.intermediate_size;
  const double linear = c.n_layers * (h * (qd + 2 * kvd) + qd * h + 3.0 * h * f);
  // NF4: 1-byte codes, fp16 or fp32 per block of 64
  const double absmax = nf4 == Nf4Absmax::kNested ? 1.0 / 64 : nf4 == Nf4Absmax::kFp16 ? 2.0 / 64 : 4.0 / 64;
  const double bytes_per_weight =
      format ? 0.5 + (*format == W4Format::kNf4 ? absmax : *format == W4Format::kInt4 ? 2.0 / 128 : 1.0 / 32) : 2.0;
  return static_cast<size_t>(linear * bytes_per_weight) + size_t(c.vocab_size) * c.hidden_size * 2 * (c.tie_word_embeddings ? 1 : 2);
}

Result<std::unique_ptr<CudaModel>> CudaModel::create_random(const ModelConfig& config, std::optional<W4Format> format,
                                                            uint64_t seed, const CudaOptions& options) {
  std::unique_ptr<CudaModel> m(new CudaModel());
  m->config_ = config;
  const ModelConfig& c = m->config_;
  NB_ASSIGN_OR_RETURN(m->impl_, make_impl(options));
  Impl& st = *m->impl_;
  Stream& s = *st.stream;
  const int h = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), f = c.intermediate_size;
  const Nf4Absmax nf4 = nf4_absmax_form(options, random_weight_bytes(c, format, Nf4Absmax::kFp16), s);
  NB_TRY(check_fits(random_weight_bytes(c, format, nf4), s, "the random model's weights"));

  NB_ASSIGN_OR_RETURN(st.embed, random_bf16_matrix(c.vocab_size, h, seed, s));
  st.lm_head = st.embed.get();
  if (!c.tie_word_embeddings) {
    NB_ASSIGN_OR_RETURN(st.head_own, random_bf16_matrix(c.vocab_size, h, seed + 1, s));
    st.lm_head = st.head_own.get();
  }
  NB_ASSIGN_OR_RETURN(st.final_norm, constant_bf16(h, c.norm_adds_one ? 0.0f : 1.0f, s));

  ProgressBar progress("random weights on " + s.info().name, c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    GpuLayer g;
    const float one = c.norm_adds_one ? 0.0f : 1.0f;
    NB_ASSIGN_OR_RETURN(g.attn_norm, constant_bf16(h, one, s));
    NB_ASSIGN_OR_RETURN(g.ffn_norm, constant_bf16(h, one, s));
    if (c.sandwich_norms) {
      NB_ASSIGN_OR_RETURN(g.post_attn_norm, constant_bf16(h, one, s));
      NB_ASSIGN_OR_RETURN(g.post_ffn_norm, constant_bf16(h, one, s));
    }
    if (c.qk_norm) {
      NB_ASSIGN_OR_RETURN(g.q_norm, constant_bf16(c.head_dim, one, s));
      NB_ASSIGN_OR_RETURN(g.k_norm, constant_bf16(c.head_dim, one, s));
    }
    const uint64_t ls = seed + 1000 * (l + 1);
    NB_ASSIGN_OR_RETURN(g.qkv, GpuLinear::random(format, qd + 2 * kvd, h, ls + 1, s, /*glu=*/false, nf4));
    NB_ASSIGN_OR_RETURN(g.o, GpuLinear::random(format, h, qd, ls + 2, s, /*glu=*/false, nf4));
    NB_ASSIGN_OR_RETURN(g.gate_up, GpuLinear::random(format, 2 * f, h, ls + 3, s, /*glu=*/true, nf4));
    NB_ASSIGN_OR_RETURN(g.down, GpuLinear::random(format, h, f, ls + 4, s, /*glu=*/false, nf4));
    const RopeConfig& rope = static_cast<size_t>(l) < c.layers.size() ? c.layers[l].rope : RopeConfig{};
    NB_ASSIGN_OR_RETURN(g.inv_freq, to_device(rope_inv_freq(rope, c.head_dim), s));
    st.layers.push_back(std::move(g));
    progress.update(l + 1);
  }
  progress.finish();
  return m;
}

Result<std::unique_ptr<KvCache>> CudaModel::make_kv_cache(int n_tokens, int block_size) const {
  ops::KvLayout layout{block_size, config_.n_kv_heads, config_.head_dim};
  const int n_blocks = (n_tokens + block_size - 1) / block_size;
  Stream& s = *impl_->stream;
  NB_TRY(s.lost());
  auto kv = CudaKvCache::create(config_.n_layers, n_blocks, layout, s);
  if (!kv) return s.settle(kv.status(), "make_kv_cache");
  return std::unique_ptr<KvCache>(std::move(kv).value());
}

size_t CudaModel::weight_stream_bytes() const {
  size_t b = static_cast<size_t>(config_.vocab_size) * config_.hidden_size * 2;  // LM head
  for (const GpuLayer& g : impl_->layers)
    b += g.qkv.stream_bytes() + g.o.stream_bytes() + g.gate_up.stream_bytes() + g.down.stream_bytes() +
         4 * static_cast<size_t>(config_.hidden_size);
  return b;
}

size_t CudaModel::linear_device_bytes() const {
  size_t b = 0;
  for (const GpuLayer& g : impl_->layers) b += g.qkv.device_size() + g.o.device_size() + g.gate_up.device_size() + g.down.device_size();
  return b;
}

bool CudaModel::nf4_double_quant_kept() const {
  for (const GpuLayer& g : impl_->layers)
    for (const GpuLinear* lin : {&g.qkv, &g.o, &g.gate_up, &g.down})
      if (lin->w4_flags() & kW4DoubleQuant) return true;
  return false;
}

std::string CudaModel::nf4_absmax() const {
  bool fp16 = false, fp32 = false, nested = false;
  for (const GpuLayer& g : impl_->layers)
    for (const GpuLinear* lin : {&g.qkv, &g.o, &g.gate_up, &g.down}) {
      if (!lin->is_w4() || std::string(lin->format_name()) != "nf4") continue;
      const uint32_t f = lin->w4_flags();
      ((f & kW4DoubleQuant) ? nested : (f & kW4ScaleF16) ? fp16 : fp32) = true;
    }
  std::string out;
  for (auto [on, name] : {std::pair{fp16, "fp16"}, {fp32, "fp32"}, {nested, "double-quantized"}})
    if (on) out += (out.empty() ? "" : "+") + std::string(name);
  return out;
}

std::string CudaModel::weight_format() const {
  std::string f;
  for (const GpuLayer& g : impl_->layers)
    for (const GpuLinear* lin : {&g.qkv, &g.o, &g.gate_up, &g.down}) {
      if (f.empty()) f = lin->format_name();
      else if (f != lin->format_name()) return "mixed";
    }
  return f;
}

Result<double> CudaModel::measure_copy_bandwidth(size_t bytes) const {
  Stream& s = *impl_->stream;
  NB_TRY(s.lost());
  NB_ASSIGN_OR_RETURN(auto a, DeviceBuffer<uint8_t>::create(s, bytes));
  NB_ASSIGN_OR_RETURN(auto b, DeviceBuffer<uint8_t>::create(s, bytes));
  NB_TRY(s.memset(a.get(), 1, bytes));
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  constexpr int kReps = 10;
  cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, s.get());  // warm-up
  cudaEventRecord(e0, s.get());
  for (int i = 0; i < kReps; ++i) cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, s.get());
  cudaEventRecord(e1, s.get());
  const cudaError_t err = cudaEventSynchronize(e1);
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  if (err != cudaSuccess)
    return s.settle(Status::internal("copy bandwidth: {}", cudaGetErrorString(err)), "measure_copy_bandwidth");
  return 2.0 * bytes * kReps / (ms * 1e-3);
}

}  // namespace nibble::cuda

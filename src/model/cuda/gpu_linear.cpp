#include "model/cuda/gpu_linear.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "ops/cuda/elementwise.h"
#include "ops/cuda/w4_compose.h"
#include "quant/int4.h"
#include "quant/mxfp4.h"
#include "quant/nf4.h"

namespace nibble::cuda {
namespace {

// A bitsandbytes NF4 part whose file's double quantization the GEMV can read as it is (nested
// blocks of 256, as bitsandbytes writes them), or null.
const quant::Bnb4Nested* readable_nested(const ops::WeightView& w) {
  auto* b = dynamic_cast<const quant::Bnb4Weight*>(w.quant);
  if (!b || b->format_name() != "nf4-b64" || !b->nested() || b->nested()->nested_blocksize != 256) return nullptr;
  return b->nested();
}

// A packed weight on the device in the NF4 absmax form `nf4` names: double-quantized NF4 widened
// to fp32 absmax unless kNested, fp32 absmax rounded to fp16 for kFp16 where they all fit
// (otherwise the weight keeps fp32: exact, slower).
Result<W4Device> upload_packed(W4Packed w, Nf4Absmax nf4, Stream& s) {
  if ((w.flags & kW4DoubleQuant) && nf4 != Nf4Absmax::kNested) {
    NB_ASSIGN_OR_RETURN(w, w4_widen_nested(w));
  }
  if (nf4 == Nf4Absmax::kFp16 && w.format == W4Format::kNf4) {  // double quantization widened above
    if (const Status narrowed = w4_narrow_absmax(w); !narrowed.is_ok() && narrowed.code() != StatusCode::kUnsupported)
      return narrowed;
  }
  return cuda::upload(w, s);
}

// The packed form of one part, or nullopt when the GEMV cannot read its format. `keep_nested`:
// a double-quantized NF4 part keeps the file's 1-byte absmax codes (else its absmax go as fp32).
Result<std::optional<W4Packed>> try_pack(const ops::WeightView& w, bool keep_nested) {
  if (!w.quant) return std::optional<W4Packed>{};
  if (auto* b = dynamic_cast<const quant::Bnb4Weight*>(w.quant); b && b->format_name() == "nf4-b64") {
    const quant::Bnb4Nested* nd = keep_nested ? readable_nested(w) : nullptr;
    NB_ASSIGN_OR_RETURN(W4Packed p, nd ? pack_nf4_double_quant(b->packed(), w.rows, w.cols, 64, nd->q.data(),
                                                               nd->nested_absmax.data(), nd->nested_blocksize,
                                                               nd->offset, nd->map.data())
                                       : pack_nf4(b->packed(), w.rows, w.cols, 64, b->absmax().data()));
    // The floor counts what the checkpoint's format must move, whatever form the GPU reads.
    if (const quant::Bnb4Nested* f = b->nested())
      p.stream_bytes = static_cast<size_t>(w.rows * w.cols / 2) + f->q.size() + 4 * f->nested_absmax.size();
    return std::optional<W4Packed>(std::move(p));
  }
  if (auto* i = dynamic_cast<const quant::Int4Weight*>(w.quant);
      i && i->data().group_size == 128 && i->data().g_idx.empty() && w.cols % 128 == 0) {
    NB_ASSIGN_OR_RETURN(W4Packed p, pack_int4(i->data()));
    return std::optional<W4Packed>(std::move(p));
  }
  if (auto* m = dynamic_cast<const quant::Mxfp4Weight*>(w.quant); m && w.cols % 64 == 0) {
    NB_ASSIGN_OR_RETURN(W4Packed p, pack_mxfp4(m->packed(), m->scales(), w.rows, w.cols));
    return std::optional<W4Packed>(std::move(p));
  }
  return std::optional<W4Packed>{};
}

}  // namespace

Result<DeviceBuffer<uint16_t>> upload_bf16(std::span<const ops::WeightView* const> parts, Stream& s) {
  const int64_t k = parts[0]->cols;
  int64_t n = 0;
  for (const ops::WeightView* p : parts) n += p->rows;
  std::vector<uint16_t> host(static_cast<size_t>(n * k));
  int64_t row0 = 0;
  for (const ops::WeightView* p : parts) {
#pragma omp parallel
    {
      std::vector<float> row(k);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < p->rows; ++r) {
        ops::load_row(*p, r, row.data());
        uint16_t* out = host.data() + (row0 + r) * k;
        for (int64_t c = 0; c < k; ++c) out[c] = f32_to_bf16(row[c]);
      }
    }
    row0 += p->rows;
  }
  return to_device(host, s);
}

Result<std::vector<float>> weight_as_f32(const ops::WeightView& w) {
  std::vector<float> out(static_cast<size_t>(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r) ops::load_row(w, r, out.data() + r * w.cols);
  return out;
}

size_t GpuLinear::device_bytes(std::span<const ops::WeightView* const> parts, Nf4Absmax nf4) {
  size_t bytes = 0;
  for (const ops::WeightView* p : parts) {
    const std::string f = p->quant ? p->quant->format_name() : "";
    const size_t pad = static_cast<size_t>(16 * p->cols), blocks = static_cast<size_t>(p->rows * p->cols / 64);
    if (f == "nf4-b64") {
      // Codes plus 1 byte a block where double quantization is kept (the part fills whole nested
      // blocks, so it stacks with others), else fp16 or fp32 absmax (fp16 where asked: a weight
      // whose absmax do not fit fp16 takes 2 bytes a block more); plus padding to 16 rows.
      const bool kept = nf4 == Nf4Absmax::kNested && readable_nested(*p) && blocks % 256 == 0;
      const size_t absmax = kept ? blocks + blocks / 64 : (nf4 == Nf4Absmax::kFp16 ? 2 : 4) * blocks;
      bytes += static_cast<size_t>(p->rows * p->cols / 2) + absmax + pad;
    } else if (f == "int4-g128" || f == "mxfp4") {
      bytes += p->quant->nbytes() + pad;  // the format's bytes plus padding to 16 rows
    } else {
      bytes += static_cast<size_t>(p->rows * p->cols * 2);  // dense bf16
    }
  }
  return bytes;
}

Result<GpuLinear> GpuLinear::upload(std::span<const ops::WeightView* const> parts, Stream& s, bool glu,
                                    Nf4Absmax nf4) {
  GpuLinear g;
  g.k_ = parts[0]->cols;
  for (const ops::WeightView* p : parts) {
    if (p->cols != g.k_) return Status::internal("GpuLinear::upload: parts differ in columns");
    g.n_ += p->rows;
  }
  // Packed when every part packs and the parts stack: first with double-quantized NF4 as the
  // file has it (composed with each part's offset, then put in the form `nf4` names), else (the
  // parts do not stack double-quantized) each part's absmax in fp32, then in that form.
  for (const bool nested : {true, false}) {
    std::vector<W4Packed> packed;
    for (const ops::WeightView* p : parts) {
      NB_ASSIGN_OR_RETURN(std::optional<W4Packed> w, try_pack(*p, nested));
      if (!w) break;
      packed.push_back(std::move(*w));
    }
    if (packed.size() != parts.size()) break;
    std::optional<W4Packed> whole;
    if (packed.size() == 1) whole = std::move(packed[0]);
    if (!whole && glu && packed.size() == 2) {
      if (auto il = w4_interleave_glu(packed[0], packed[1]); il.is_ok()) {
        whole = std::move(*il);
        g.glu_interleaved_ = true;
      }
    }
    if (!whole) {
      std::vector<const W4Packed*> ptrs;
      for (const auto& p : packed) ptrs.push_back(&p);
      if (auto cat = w4_concat_rows(ptrs); cat.is_ok()) whole = std::move(*cat);
    }
    if (whole) {
      NB_ASSIGN_OR_RETURN(g.w4_, upload_packed(std::move(*whole), nf4, s));
      return g;
    }
    const bool any_nested =
        std::any_of(packed.begin(), packed.end(), [](const W4Packed& p) { return p.flags & kW4DoubleQuant; });
    if (!any_nested) break;  // packing again without double quantization would change nothing
  }
  // Dense bf16 (dequantizing whatever the CPU backend can read).
  NB_ASSIGN_OR_RETURN(g.dense_, upload_bf16(parts, s));
  return g;
}

Result<GpuLinear> GpuLinear::random(std::optional<W4Format> format, int64_t n, int64_t k, uint64_t seed, Stream& s,
                                    bool glu, Nf4Absmax nf4) {
  GpuLinear g;
  g.n_ = n;
  g.k_ = k;
  if (format) {
    g.glu_interleaved_ = glu && n % 16 == 0;
    NB_ASSIGN_OR_RETURN(W4Packed w, w4_random(*format, n, k, seed));
    NB_ASSIGN_OR_RETURN(g.w4_, upload_packed(std::move(w), nf4, s));
    return g;
  }
  NB_ASSIGN_OR_RETURN(g.dense_, random_bf16_matrix(n, k, seed, s));
  return g;
}

Result<DeviceBuffer<uint16_t>> random_bf16_matrix(int64_t n, int64_t k, uint64_t seed, Stream& s) {
  std::vector<uint16_t> host(static_cast<size_t>(n * k));
  const float scale = 1.7320508f / std::sqrt(static_cast<float>(k));  // uniform(-a, a) has std a/sqrt(3)
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(r) * 0xD1B54A32D192ED03ull + 1;
    for (int64_t c = 0; c < k; ++c) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      const float u = static_cast<float>(x >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f;
      host[r * k + c] = f32_to_bf16(u * scale);
    }
  }
  return to_device(host, s);
}

Status GpuLinear::apply(const uint16_t* x, int m, void* y, uint16_t* scratch, Blas& blas, Stream& s) const {
  if (!w4_) return blas.gemm(x, m, dense_.get(), n_, k_, y, /*y_f32=*/false);
  if (m <= 32) return gemv_w4(*w4_, x, m, static_cast<uint16_t*>(y), s);
  // Prefill: one dequantized bf16 copy (a pass at copy speed), then a tensor-core GEMM at full
  // rate. The Hopper mixed-input GEMM that skips the copy is a later step (docs/gpu_backend.md).
  NB_TRY(w4_dequant_bf16(*w4_, scratch, s));
  return blas.gemm(x, m, scratch, n_, k_, y, /*y_f32=*/false);
}

Status GpuLinear::apply_glu(const uint16_t* x, int m, bool gelu_tanh, uint16_t* gate_up, uint16_t* out,
                            uint16_t* scratch, Blas& blas, Stream& s) const {
  if (glu_interleaved_ && m <= 32)
    return gemv_w4(*w4_, x, m, out, s, -1, gelu_tanh ? W4Epilogue::kGeluTanhMul : W4Epilogue::kSiluMul);
  NB_TRY(apply(x, m, gate_up, scratch, blas, s));
  return act_mul_fused(gate_up, m, static_cast<int>(n_ / 2), gelu_tanh, out, s, glu_interleaved_);
}

}  // namespace nibble::cuda

// One linear layer's weight on the GPU and the product with it: a packed 4-bit weight (GEMV for
// up to 32 rows, dequantized tile + cuBLAS above) or a dense bf16 matrix (cuBLAS).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "core/status.h"
#include "model/cuda/blas.h"
#include "ops/cuda/gemv_w4.h"
#include "ops/ops.h"

namespace nibble::cuda {

class GpuLinear {
 public:
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  bool is_w4() const { return w4_.has_value(); }
  const char* format_name() const { return w4_ ? w4_format_name(w4_->format) : "bf16"; }
  // The packed weight's W4Flags (kW4DoubleQuant: NF4 absmax read as the file's 1-byte codes;
  // kW4ScaleF16 on NF4: absmax as fp16), 0 when dense.
  uint32_t w4_flags() const { return w4_ ? w4_->flags : 0; }
  // Bytes the weight occupies on the device (codes, scales, zero points, nested absmax and map).
  size_t device_size() const {
    if (!w4_) return dense_.bytes();
    return w4_->q.bytes() + w4_->scales.bytes() + w4_->zeros.bytes() + w4_->nested.bytes() + w4_->dmap.bytes();
  }
  // Bytes one product must read for the weight (the roofline numerator).
  size_t stream_bytes() const { return w4_ ? w4_->stream_bytes : static_cast<size_t>(n_ * k_ * 2); }
  // bf16 elements of scratch that apply() needs for m rows (a dequantized copy above 32 rows).
  size_t scratch_elems(int m) const { return (w4_ && m > 32) ? static_cast<size_t>(n_ * k_) : 0; }

  // y [m, n] = x [m, k] @ W^T (+ bias), bf16; y_f32 writes fp32 instead (dense weights only).
  Status apply(const uint16_t* x, int m, void* y, uint16_t* scratch, Blas& blas, Stream& s) const;

  // A gate|up weight (made with `glu`): out [m, n / 2] = act(x W_gate^T) * (x W_up^T), bf16. One
  // GEMV with the gated epilogue where the weight is packed with its rows interleaved (up to 32
  // rows); otherwise the product into `gate_up` [m, n] and act_mul_fused over it.
  Status apply_glu(const uint16_t* x, int m, bool gelu_tanh, uint16_t* gate_up, uint16_t* out, uint16_t* scratch,
                   Blas& blas, Stream& s) const;

  // The weight parts (rows stacked in order) of a CPU-bound model, as one GPU weight: packed when
  // every part is a 4-bit format the GEMV reads (NF4 blocks of 64, INT4 group 128 without
  // act-order, MXFP4) and they can be stacked; otherwise dequantized to bf16.
  // glu: the parts are {gate, up} of a gated MLP; packed, their rows are interleaved for the
  // gated epilogue when the formats allow it (w4_interleave_glu), else stacked.
  // nf4: how NF4 absmax go to the device. kNested: double-quantized NF4 stays so (1 byte of
  // absmax a block of 64, each part's own offset) wherever its parts stack that way
  // (w4_concat_rows), else its absmax are widened to fp32; kFp32 widens; kFp16 widens, then rounds
  // to fp16 (w4_narrow_absmax) where every absmax fits.
  static Result<GpuLinear> upload(std::span<const ops::WeightView* const> parts, Stream& s, bool glu = false,
                                  Nf4Absmax nf4 = Nf4Absmax::kFp16);
  // A random weight [n, k]: packed in `format`, or dense bf16 when `format` is empty. glu: a
  // random gate|up weight, marked interleaved when packed and n % 16 == 0 (rows of a random
  // matrix in any order are a random matrix: nothing to move). NF4 is drawn double-quantized,
  // as checkpoints ship it, then put in the form `nf4` names, as upload does.
  static Result<GpuLinear> random(std::optional<W4Format> format, int64_t n, int64_t k, uint64_t seed, Stream& s,
                                  bool glu = false, Nf4Absmax nf4 = Nf4Absmax::kFp16);

  // Bytes the weight will take on the device, computed before uploading (memory checks).
  static size_t device_bytes(std::span<const ops::WeightView* const> parts, Nf4Absmax nf4 = Nf4Absmax::kFp16);

 private:
  int64_t n_ = 0, k_ = 0;
  bool glu_interleaved_ = false;  // rows gate/up interleaved by 8 (w4_interleave_glu), else [gate; up]
  std::optional<W4Device> w4_;
  DeviceBuffer<uint16_t> dense_;
};

// A random dense bf16 matrix [n, k] with rows of about unit norm (uniform, std 1/sqrt(k)).
Result<DeviceBuffer<uint16_t>> random_bf16_matrix(int64_t n, int64_t k, uint64_t seed, Stream& s);

// Weights that stay dense on the device (embeddings, LM head, norms, and linear layers whose
// format the GEMV cannot read): the parts' rows stacked, widened or dequantized, as bf16.
Result<DeviceBuffer<uint16_t>> upload_bf16(std::span<const ops::WeightView* const> parts, Stream& s);
inline Result<DeviceBuffer<uint16_t>> upload_bf16(const ops::WeightView& w, Stream& s) {
  const ops::WeightView* parts[] = {&w};
  return upload_bf16(parts, s);
}

// A vector weight (biases): widened from f32/f16/bf16, or dequantized.
Result<std::vector<float>> weight_as_f32(const ops::WeightView& w);

// A host vector copied into a new device buffer (waits for the copy: `v` may go away).
template <typename T>
Result<DeviceBuffer<T>> to_device(const std::vector<T>& v, Stream& s) {
  NB_ASSIGN_OR_RETURN(auto d, DeviceBuffer<T>::create(s, v.size()));
  NB_TRY(s.upload(d.get(), v.data(), v.size() * sizeof(T)));
  NB_TRY(s.sync());
  return d;
}

}  // namespace nibble::cuda

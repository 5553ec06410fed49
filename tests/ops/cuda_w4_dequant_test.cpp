// w4_dequant_bf16 (src/ops/cuda/w4_dequant.cu) against w4_packed_value rounded to bf16, bit for
// bit: fresh random weights of every format (NF4 with fp32 and double-quantized absmax, INT4
// symmetric and with zero points, MXFP4), awkward row counts, the output poisoned first.
#include <gtest/gtest.h>

#ifdef NIBBLE_HAVE_CUDA

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "cuda_test_util.h"
#include "op_test_util.h"
#include "ops/cuda/gemv_w4.h"
#include "ops/cuda/w4_compose.h"
#include "quant/int4.h"
#include "quant/mxfp4.h"
#include "quant/nf4.h"

namespace nibble::cuda {
namespace {

enum class DqKind { kNf4, kNf4Dq, kNf4Half, kInt4Sym, kInt4Zeros, kMxfp4 };
const char* dq_name(DqKind k) {
  switch (k) {
    case DqKind::kNf4: return "nf4";
    case DqKind::kNf4Dq: return "nf4-dq";
    case DqKind::kNf4Half: return "nf4-half";
    case DqKind::kInt4Sym: return "int4-sym";
    case DqKind::kInt4Zeros: return "int4-zeros";
    case DqKind::kMxfp4: return "mxfp4";
  }
  return "?";
}

Result<W4Packed> dq_random_weight(DqKind kind, int64_t n, int64_t k) {
  const auto w = op_test::randn(static_cast<size_t>(n * k), 0.05f);
  switch (kind) {
    case DqKind::kNf4: {
      auto q = quant::bnb4_quantize(w.data(), n * k, 64, quant::Bnb4Type::kNf4);
      return pack_nf4(q.packed.data(), n, k, 64, q.absmax.data());
    }
    case DqKind::kNf4Half: {  // absmax rounded to fp16 (w4_narrow_absmax)
      auto q = quant::bnb4_quantize(w.data(), n * k, 64, quant::Bnb4Type::kNf4);
      NB_ASSIGN_OR_RETURN(W4Packed p, pack_nf4(q.packed.data(), n, k, 64, q.absmax.data()));
      NB_TRY(w4_narrow_absmax(p));
      return p;
    }
    case DqKind::kNf4Dq: {
      auto q = quant::bnb4_quantize(w.data(), n * k, 64, quant::Bnb4Type::kNf4);
      auto d = quant::double_quantize(q.absmax, 256);
      return pack_nf4_double_quant(q.packed.data(), n, k, 64, d.q.data(), d.nested_absmax.data(), 256, d.offset,
                                   quant::dynamic_map_signed().data());
    }
    case DqKind::kInt4Sym:
    case DqKind::kInt4Zeros: {
      quant::Int4Data d = quant::int4_quantize_symmetric(w.data(), n, k, 128);
      if (kind == DqKind::kInt4Zeros) {  // fp16 scales and zero points 0..15, as GPTQ/AWQ store them
        std::uniform_int_distribution<int> z(0, 15);
        for (auto& v : d.zeros) v = static_cast<uint8_t>(z(op_test::rng()));
        for (auto& s : d.scales) s = f16_to_f32(f32_to_f16(s * 1.37f));
        d.symmetric = false;
      }
      return pack_int4(d);
    }
    case DqKind::kMxfp4: {
      auto d = quant::mxfp4_quantize(w.data(), n, k);
      return pack_mxfp4(d.packed.data(), d.scales.data(), n, k);
    }
  }
  return Status::internal("unknown kind");
}

void check_dequant(Stream& st, const W4Packed& w, const std::string& what) {
  const int64_t n = w.n, k = w.k;
  auto dev = upload(w, st);
  ASSERT_TRUE(dev.is_ok()) << dev.status().message();
  auto out = DeviceBuffer<uint16_t>::create(st, static_cast<size_t>(n * k));
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_TRUE(st.memset(out.value().get(), 0xFF, out.value().bytes()).is_ok());  // poison: 0xFFFF is a NaN
  const Status s = w4_dequant_bf16(dev.value(), out.value().get(), st);
  ASSERT_TRUE(s.is_ok()) << s.message();
  std::vector<uint16_t> got(static_cast<size_t>(n * k));
  ASSERT_TRUE(st.download(got.data(), out.value().get(), got.size() * 2).is_ok());
  int64_t bad = 0, first = -1;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) {
      const uint16_t want = f32_to_bf16(w4_packed_value(w, r, c));
      if (got[r * k + c] != want) {
        if (first < 0) first = r * k + c;
        ++bad;
      }
    }
  EXPECT_EQ(bad, 0) << what << " n=" << n << " k=" << k << " first mismatch at (" << first / k << ", "
                    << first % k << "): got 0x" << std::hex << (first >= 0 ? got[first] : 0) << " want 0x"
                    << (first >= 0 ? f32_to_bf16(w4_packed_value(w, first / k, first % k)) : 0);
}

TEST(CudaW4Dequant, MatchesPackedValueExactly) {
  NB_REQUIRE_GPU();
  for (DqKind kind :
       {DqKind::kNf4, DqKind::kNf4Dq, DqKind::kNf4Half, DqKind::kInt4Sym, DqKind::kInt4Zeros, DqKind::kMxfp4}) {
    const bool int4 = kind == DqKind::kInt4Sym || kind == DqKind::kInt4Zeros;
    for (int64_t n : {1, 17, 4097})
      for (int64_t k : {int4 ? 128 : 64, int4 ? 1152 : 1216}) {
        auto packed = dq_random_weight(kind, n, k);
        ASSERT_TRUE(packed.is_ok()) << packed.status().message();
        check_dequant(st, *packed, dq_name(kind));
      }
  }
}

// Double-quantized NF4 parts stacked (fused q/k/v) and interleaved (gate|up) keep each part's
// offset and nested absmax (W4DqParts); the prefill path dequantizes them the same way.
TEST(CudaW4Dequant, StackedAndInterleavedDoubleQuant) {
  NB_REQUIRE_GPU();
  for (int64_t k : {2048, 5120}) {
    auto a = dq_random_weight(DqKind::kNf4Dq, 32, k), b = dq_random_weight(DqKind::kNf4Dq, 16, k),
         c = dq_random_weight(DqKind::kNf4Dq, 19, k);
    ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok());
    const W4Packed* parts[] = {&*a, &*b, &*c};
    auto cat = w4_concat_rows(parts);
    ASSERT_TRUE(cat.is_ok()) << cat.status().message();
    check_dequant(st, *cat, "nf4-dq stacked");
    auto up = dq_random_weight(DqKind::kNf4Dq, 32, k);  // its own offset
    ASSERT_TRUE(up.is_ok());
    auto il = w4_interleave_glu(*a, *up);
    ASSERT_TRUE(il.is_ok()) << il.status().message();
    check_dequant(st, *il, "nf4-dq interleaved");
  }
}

TEST(CudaW4Dequant, TypedFailures) {
  NB_REQUIRE_GPU();
  auto packed = dq_random_weight(DqKind::kMxfp4, 16, 64);
  ASSERT_TRUE(packed.is_ok());
  auto dev = upload(packed.value(), st);
  ASSERT_TRUE(dev.is_ok());
  auto out = DeviceBuffer<uint16_t>::create(st, 16 * 64 + 8);
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(w4_dequant_bf16(dev.value(), out.value().get() + 1, st).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace nibble::cuda

#endif  // NIBBLE_HAVE_CUDA

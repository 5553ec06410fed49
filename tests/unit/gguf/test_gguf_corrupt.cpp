// Corrupt GGUF files: each kind of damage, made by mutating a valid gguf-py file in memory,
// must give a clear Status that names the file and the key or tensor, and never crash.
#include <filesystem>
#include <fstream>
#include <random>

#include "gguf_test_util.h"
#include "io/gguf.h"

namespace nibble {
namespace {

using test::get;
using test::gguf_data;
using test::put;
using test::read_bytes;

class GgufCorrupt : public ::testing::Test {
 protected:
  void SetUp() override { bytes_ = read_bytes(gguf_data("all_types.gguf")); }

  // Parses the (mutated) bytes and expects failure whose message contains every fragment.
  void expect_error(StatusCode code, std::initializer_list<std::string_view> fragments) {
    auto r = GgufFile::from_memory(bytes_.data(), bytes_.size(), "bad.gguf");
    ASSERT_FALSE(r) << "parsed a corrupt file";
    EXPECT_EQ(r.status().code(), code) << r.status().message();
    const std::string& m = r.status().message();
    EXPECT_EQ(m.rfind("bad.gguf: ", 0), 0u) << m;
    for (auto f : fragments) EXPECT_NE(m.find(f), std::string::npos) << "'" << f << "' not in: " << m;
  }

  // Byte position just after the length-prefixed string `s` (a key or a tensor name).
  size_t after_string(std::string_view s) {
    std::string prefixed(8, '\0');
    const uint64_t n = s.size();
    std::memcpy(prefixed.data(), &n, 8);
    prefixed += s;
    const size_t pos = test::find_bytes(bytes_, prefixed);
    EXPECT_NE(pos, std::string::npos) << s;
    return pos == std::string::npos ? 0 : pos + prefixed.size();
  }
  // Tensor info fields after the name: n_dims u32, ne[n_dims] u64, type u32, offset u64.
  size_t tensor_ndims_pos(std::string_view name) { return after_string(name); }
  size_t tensor_type_pos(std::string_view name) {
    const size_t p = after_string(name);
    return p + 4 + 8 * get<uint32_t>(bytes_, p);
  }
  size_t tensor_offset_pos(std::string_view name) { return tensor_type_pos(name) + 4; }

  std::vector<uint8_t> bytes_;
};

TEST_F(GgufCorrupt, BadMagic) {
  bytes_[0] = 'X';
  expect_error(StatusCode::kInvalidArgument, {"not a GGUF file"});
}

TEST_F(GgufCorrupt, TooSmall) {
  bytes_.resize(3);
  expect_error(StatusCode::kInvalidArgument, {"too small"});
}

TEST_F(GgufCorrupt, Version1IsRefusedWithAMessage) {
  put<uint32_t>(bytes_, 4, 1);
  expect_error(StatusCode::kUnsupported, {"GGUF v1 is not supported", "re-convert"});
}

TEST_F(GgufCorrupt, UnknownVersion) {
  put<uint32_t>(bytes_, 4, 4);
  expect_error(StatusCode::kUnsupported, {"version 4"});
  put<uint32_t>(bytes_, 4, 0x03000000);  // a big-endian v3 file read as little-endian
  expect_error(StatusCode::kUnsupported, {"big-endian"});
}

TEST_F(GgufCorrupt, TruncatedHeader) {
  bytes_.resize(12);
  expect_error(StatusCode::kInvalidArgument, {"truncated header"});
}

TEST_F(GgufCorrupt, MetadataCountCannotFit) {
  put<uint64_t>(bytes_, 16, uint64_t{1} << 60);
  expect_error(StatusCode::kInvalidArgument, {"metadata count", "cannot fit"});
}

TEST_F(GgufCorrupt, TensorCountCannotFit) {
  put<uint64_t>(bytes_, 8, uint64_t{1} << 59);
  expect_error(StatusCode::kInvalidArgument, {"tensor count", "cannot fit"});
}

TEST_F(GgufCorrupt, KeyLengthPastTheEnd) {
  put<uint64_t>(bytes_, 24, uint64_t{1} << 40);  // the first key's length
  expect_error(StatusCode::kInvalidArgument, {"metadata key #0", "past the end"});
}

TEST_F(GgufCorrupt, MetadataStringPastTheEnd) {
  const size_t p = after_string("test.string");  // then u32 type, u64 length
  ASSERT_EQ(get<uint32_t>(bytes_, p), 8u);
  put<uint64_t>(bytes_, p + 4, bytes_.size());
  expect_error(StatusCode::kInvalidArgument, {"'test.string'", "past the end"});
}

TEST_F(GgufCorrupt, TruncatedInsideMetadataString) {
  const size_t p = after_string("test.string");
  bytes_.resize(p + 4 + 8 + 3);  // 3 of the 11 string bytes remain
  expect_error(StatusCode::kInvalidArgument, {"'test.string'"});
}

TEST_F(GgufCorrupt, StringInArrayPastTheEnd) {
  const size_t p = after_string("test.arr_str");  // u32 9, u32 8, u64 count, then strings
  put<uint64_t>(bytes_, p + 16, uint64_t{1} << 50);  // first element's length
  expect_error(StatusCode::kInvalidArgument, {"'test.arr_str'[0]", "past the end"});
}

TEST_F(GgufCorrupt, ArrayCountCannotFit) {
  const size_t p = after_string("test.arr_long");
  put<uint64_t>(bytes_, p + 8, uint64_t{1} << 61);
  expect_error(StatusCode::kInvalidArgument, {"'test.arr_long'", "cannot fit"});
}

TEST_F(GgufCorrupt, UnknownValueType) {
  const size_t p = after_string("test.u8");
  put<uint32_t>(bytes_, p, 13);
  expect_error(StatusCode::kInvalidArgument, {"'test.u8'", "unknown value type 13"});
}

TEST_F(GgufCorrupt, UnknownArrayElementType) {
  const size_t p = after_string("test.arr_i32");
  put<uint32_t>(bytes_, p + 4, 99);
  expect_error(StatusCode::kInvalidArgument, {"'test.arr_i32'", "unknown value type 99"});
}

TEST_F(GgufCorrupt, DuplicateKey) {
  const size_t p = after_string("test.i8");
  std::memcpy(bytes_.data() + p - 7, "test.u8", 7);
  expect_error(StatusCode::kInvalidArgument, {"duplicate", "'test.u8'"});
}

TEST_F(GgufCorrupt, DuplicateTensorName) {
  const size_t p = after_string("blk.0.q8_0");
  std::memcpy(bytes_.data() + p - 10, "blk.0.q4_0", 10);
  expect_error(StatusCode::kInvalidArgument, {"duplicate tensor name 'blk.0.q4_0'"});
}

TEST_F(GgufCorrupt, UnknownGgmlType) {
  put<uint32_t>(bytes_, tensor_type_pos("w.f32"), 99);
  expect_error(StatusCode::kInvalidArgument, {"tensor 'w.f32'", "unknown ggml type 99"});
  put<uint32_t>(bytes_, tensor_type_pos("w.f32"), 31);  // Q4_0_4_4: removed from ggml
  expect_error(StatusCode::kInvalidArgument, {"tensor 'w.f32'", "unknown ggml type 31"});
}

TEST_F(GgufCorrupt, MisalignedOffset) {
  const size_t p = tensor_offset_pos("w.f16_1d");
  put<uint64_t>(bytes_, p, get<uint64_t>(bytes_, p) + 4);
  expect_error(StatusCode::kInvalidArgument, {"tensor 'w.f16_1d'", "not a multiple of the alignment 32"});
}

TEST_F(GgufCorrupt, TensorDataPastTheEnd) {
  const size_t p = tensor_offset_pos("w.f32");
  put<uint64_t>(bytes_, p, uint64_t{1} << 40);
  expect_error(StatusCode::kInvalidArgument, {"tensor 'w.f32'", "past the end of the file"});
}

TEST_F(GgufCorrupt, TruncatedTensorData) {
  bytes_.resize(bytes_.size() - 200);  // cuts into the last tensor
  expect_error(StatusCode::kInvalidArgument, {"tensor 'blk.0.iq4_xs'", "past the end of the file"});
}

TEST_F(GgufCorrupt, TooManyDims) {
  put<uint32_t>(bytes_, tensor_ndims_pos("w.f32"), 5);
  expect_error(StatusCode::kInvalidArgument, {"tensor 'w.f32'", "5 dims"});
}

TEST_F(GgufCorrupt, DimsOverflow) {
  const size_t p = tensor_ndims_pos("w.f32") + 4;  // ne[0], ne[1]
  put<uint64_t>(bytes_, p, uint64_t{1} << 62);
  put<uint64_t>(bytes_, p + 8, uint64_t{1} << 62);
  expect_error(StatusCode::kInvalidArgument, {"tensor 'w.f32'", "overflows"});
  put<uint64_t>(bytes_, p, ~uint64_t{0});  // not representable as int64
  expect_error(StatusCode::kInvalidArgument, {"tensor 'w.f32'", "out of range"});
}

TEST_F(GgufCorrupt, EmptyRowsDoNotHideAnOverflowingRowCount) {
  const size_t p = tensor_ndims_pos("w.f32_4d") + 4;  // ne[0..3]
  put<uint64_t>(bytes_, p, 0);
  put<uint64_t>(bytes_, p + 8, uint64_t{1} << 62);
  put<uint64_t>(bytes_, p + 16, uint64_t{1} << 62);
  expect_error(StatusCode::kInvalidArgument, {"tensor 'w.f32_4d'", "overflows"});
}

TEST_F(GgufCorrupt, ByteSizeOverflow) {
  // F32 with ne[0] = 2^62: 2^62 elements fit int64, 2^64 bytes do not fit uint64.
  const size_t p = tensor_ndims_pos("w.f32") + 4;
  put<uint64_t>(bytes_, p, uint64_t{1} << 62);
  put<uint64_t>(bytes_, p + 8, 1);
  expect_error(StatusCode::kInvalidArgument, {"tensor 'w.f32'", "byte size overflows"});
}

TEST_F(GgufCorrupt, RowNotAMultipleOfTheBlock) {
  put<uint64_t>(bytes_, tensor_ndims_pos("blk.0.q4_0") + 4, 48);  // ne[0] 64 -> 48
  expect_error(StatusCode::kInvalidArgument, {"tensor 'blk.0.q4_0'", "not a multiple of the Q4_0 block size 32"});
}

TEST_F(GgufCorrupt, BadAlignment) {
  bytes_ = read_bytes(gguf_data("aligned64.gguf"));
  const size_t p = after_string("general.alignment");
  ASSERT_EQ(get<uint32_t>(bytes_, p), 4u);  // uint32
  put<uint32_t>(bytes_, p + 4, 48);
  expect_error(StatusCode::kInvalidArgument, {"'general.alignment'", "not a power of two"});
  put<uint32_t>(bytes_, p + 4, 0);
  expect_error(StatusCode::kInvalidArgument, {"'general.alignment'", "not a power of two"});
  put<uint32_t>(bytes_, p, 5);  // int32 instead of uint32
  put<uint32_t>(bytes_, p + 4, 64);
  expect_error(StatusCode::kInvalidArgument, {"'general.alignment'", "expected uint32, found int32"});
}

TEST_F(GgufCorrupt, DeeplyNestedArrays) {
  // Hand-built: one key whose value is an array of arrays of ... 100 deep.
  std::vector<uint8_t> b(24);
  std::memcpy(b.data(), "GGUF", 4);
  put<uint32_t>(b, 4, 3);
  put<uint64_t>(b, 8, 0);
  put<uint64_t>(b, 16, 1);
  auto append = [&](auto v) {
    b.resize(b.size() + sizeof(v));
    std::memcpy(b.data() + b.size() - sizeof(v), &v, sizeof(v));
  };
  append(uint64_t{4});
  b.insert(b.end(), {'d', 'e', 'e', 'p'});
  append(uint32_t{9});
  for (int i = 0; i < 100; ++i) {
    append(uint32_t{9});  // element type: array
    append(uint64_t{1});
  }
  bytes_ = b;
  expect_error(StatusCode::kInvalidArgument, {"'deep'", "nested deeper"});
}

TEST_F(GgufCorrupt, OpenReportsMissingFileAndDirectory) {
  auto r = GgufFile::open(gguf_data("no_such_file.gguf"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  auto d = GgufFile::open(gguf_data(""));
  ASSERT_FALSE(d);
}

TEST_F(GgufCorrupt, CorruptFileOnDiskNamesThePath) {
  bytes_[0] = 'Z';
  const auto path = std::filesystem::temp_directory_path() / "nibble_gguf_corrupt_test.gguf";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
  auto r = GgufFile::open(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find(path.string()), std::string::npos) << r.status().message();
}

// Every prefix of a valid file either fails cleanly or, once all tensor data is present (only
// trailing padding missing), parses.
TEST(GgufTruncation, EveryPrefixFailsCleanly) {
  for (const char* name : {"small_v2.gguf", "aligned64.gguf", "all_types.gguf"}) {
    const std::vector<uint8_t> bytes = read_bytes(gguf_data(name));
    auto full = GgufFile::from_memory(bytes.data(), bytes.size(), name);
    ASSERT_TRUE(full) << full.status().message();
    uint64_t data_end = 0;
    for (const auto& t : full->tensors()) data_end = std::max(data_end, full->data_offset() + t.offset + t.nbytes);
    for (size_t n = 0; n < bytes.size(); ++n) {
      // A fresh heap copy of exactly n bytes, so that reading past the end is an ASan error.
      std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      auto r = GgufFile::from_memory(prefix.data(), prefix.size(), name);
      if (n < data_end) ASSERT_FALSE(r) << name << " prefix " << n << " parsed";
      else ASSERT_TRUE(r) << name << " prefix " << n << ": " << r.status().message();
    }
  }
}

// Random byte damage: any outcome is fine except a crash (run under ASan/UBSan to mean more).
TEST(GgufRandomDamage, NoCrash) {
  const std::vector<uint8_t> bytes = read_bytes(gguf_data("aligned64.gguf"));
  std::mt19937 rng(1234);
  int parsed = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> b = bytes;
    const int n_flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n_flips; ++k) {
      const size_t pos = rng() % b.size();
      b[pos] = (rng() % 2) ? static_cast<uint8_t>(rng()) : static_cast<uint8_t>(b[pos] ^ (1u << (rng() % 8)));
    }
    auto r = GgufFile::from_memory(b.data(), b.size(), "fuzz.gguf");
    if (!r) continue;
    ++parsed;
    for (const auto& t : r->tensors()) {  // a parsed file's tensors must be decodable
      std::vector<float> out(static_cast<size_t>(std::min<int64_t>(t.cols, 4096)));
      if (t.rows > 0 && t.cols <= 4096 && t.nbytes >= t.row_bytes) (void)ggml_dequantize_row(t.type, t.data, out.data(), t.cols);
    }
  }
  EXPECT_GT(parsed, 0);  // damage in tensor data leaves the file valid
}

}  // namespace
}  // namespace nibble

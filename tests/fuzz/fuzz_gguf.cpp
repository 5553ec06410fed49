// libFuzzer target: arbitrary bytes as a GGUF file. Parses, looks up every metadata key through
// the typed getters, renders every value, and dequantizes the first rows of every tensor.
// Any crash, sanitizer report or hang is a bug; error Statuses are the expected outcome.
//
// With CMake: tools/run_fuzzers.sh (cmake/NibbleFuzz.cmake; there is no src/gguf module, so it
// links every module, nibble_io and nibble_quant included). Standalone, from the repo root:
//   clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
//     -Isrc tests/fuzz/fuzz_gguf.cpp src/io/gguf.cpp src/quant/ggml_*.cpp src/core/dtype.cpp \
//     src/core/mapped_file.cpp -lfmt -o build-gguf-fuzz/fuzz_gguf
//   mkdir -p build-gguf-fuzz/corpus && cp tests/data/gguf/*.gguf build-gguf-fuzz/corpus/
//   build-gguf-fuzz/fuzz_gguf -max_total_time=600 -max_len=65536 build-gguf-fuzz/corpus
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/gguf.h"
#include "quant/ggml_types.h"

using namespace nibble;

static volatile size_t g_sink;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = GgufFile::from_memory(data, size, "fuzz.gguf");
  if (!r) return 0;
  const GgufFile& f = r.value();

  size_t sink = 0;  // keeps the lookups from being optimized away
  for (const GgufKV& kv : f.metadata()) {
    const std::string_view k = kv.key;
    sink += f.get_u8(k).is_ok() + f.get_i8(k).is_ok() + f.get_u16(k).is_ok() + f.get_i16(k).is_ok();
    sink += f.get_u32(k).is_ok() + f.get_i32(k).is_ok() + f.get_u64(k).is_ok() + f.get_i64(k).is_ok();
    sink += f.get_f32(k).is_ok() + f.get_f64(k).is_ok() + f.get_bool(k).is_ok();
    sink += f.get_int(k).is_ok() + f.get_float(k).is_ok();
    if (auto s = f.get_string(k)) sink += s.value().size();
    if (auto a = f.get_array(k)) {
      sink += a.value()->size;
      if (auto v = f.get_int_array(k)) sink += v.value().size();
      if (auto v = f.get_float_array(k)) sink += v.value().size();
      if (auto v = f.get_string_array(k)) sink += v.value().size();
    }
    sink += gguf_value_to_string(kv.value, 4).size();
  }

  std::vector<float> out;
  for (const GgufTensor& t : f.tensors()) {
    const GgufTensor* found = f.find_tensor(t.name);
    if (found != &t) __builtin_trap();  // names are unique, lookup must find this one
    if (t.nbytes > 0 && (t.data < data || t.data + t.nbytes > data + size)) __builtin_trap();
    // First rows only: a tiny file may legally describe a huge all-zero-size tensor.
    if (t.cols <= 0 || t.cols > (1 << 16) || t.rows <= 0) continue;
    const int64_t rows = std::min<int64_t>(t.rows, std::max<int64_t>(1, (1 << 16) / t.cols));
    out.resize(static_cast<size_t>(rows * t.cols));
    Status s = ggml_dequantize(t.type, t.data, t.row_bytes * static_cast<uint64_t>(rows), rows, t.cols, out.data());
    sink += s.is_ok();
  }
  g_sink = sink;
  return 0;
}

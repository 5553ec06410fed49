// Helpers shared by the GGUF tests: golden file paths, byte I/O, float bit comparison.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace nibble::test {

inline std::string gguf_data(const std::string& file) { return std::string(NIBBLE_TEST_DATA) + "/gguf/" + file; }

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path << " (re-run tools/make_gguf_goldens.py)";
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Bit-exact equality, except that any NaN matches any NaN (payloads are not part of the contract).
inline ::testing::AssertionResult same_bits(float got, uint32_t want_bits, size_t index) {
  float want;
  std::memcpy(&want, &want_bits, 4);
  if (std::isnan(got) && std::isnan(want)) return ::testing::AssertionSuccess();
  if (float_bits(got) == want_bits) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "element " << index << ": got " << got << " (0x" << std::hex
                                       << float_bits(got) << "), want " << want << " (0x" << want_bits << ")";
}

// Position of `needle` in `hay` (first occurrence), or npos.
inline size_t find_bytes(const std::vector<uint8_t>& hay, std::string_view needle) {
  std::string_view h(reinterpret_cast<const char*>(hay.data()), hay.size());
  return h.find(needle);
}

template <typename T>
inline void put(std::vector<uint8_t>& b, size_t pos, T v) {
  ASSERT_LE(pos + sizeof(T), b.size());
  std::memcpy(b.data() + pos, &v, sizeof(T));
}
template <typename T>
inline T get(const std::vector<uint8_t>& b, size_t pos) {
  T v{};
  std::memcpy(&v, b.data() + pos, sizeof(T));
  return v;
}

}  // namespace nibble::test

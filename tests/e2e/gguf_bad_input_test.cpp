// `nibble run` / `nibble info` on bad input: a prompt longer than the context, truncated or
// corrupt .gguf files. Each must end with one clear error line (naming the file where there is
// one) and a non-zero exit, never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gguf_test_util.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(NIBBLE_TEST_DATA) + "/gguf_models/llama3_classic.q4_1.gguf";

std::vector<char> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

std::string write_tmp(const std::string& name, const std::vector<char>& bytes) {
  const fs::path dir = fs::temp_directory_path() / ("nibble_bad_gguf_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Non-zero exit; the output is one line starting "nibble: " that contains `needle`.
void expect_one_line_error(const test::CmdResult& r, const std::string& needle, const std::string& what) {
  EXPECT_NE(r.status, 0) << what << ": " << r.out;
  EXPECT_LT(r.status, 128) << what << " died of a signal: " << r.out;
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  EXPECT_EQ(out.find('\n'), std::string::npos) << what << ": more than one line:\n" << r.out;
  EXPECT_EQ(out.rfind("nibble: ", 0), 0u) << what << ": " << r.out;
  EXPECT_NE(out.find(needle), std::string::npos) << what << ": '" << needle << "' not in: " << r.out;
}

TEST(GgufBadInput, PromptLongerThanContext) {
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += "hello world ";
  auto r = test::run_nibble("run -m '" + kModel + "' --ctx 16 --temp 0 -n 4 -p '" + prompt + "'");
  expect_one_line_error(r, "longer than the context of 16 tokens", "long prompt");
}

TEST(GgufBadInput, TruncatedFiles) {
  const auto bytes = read_all(kModel);
  ASSERT_GT(bytes.size(), 100000u);
  // Inside the magic, the metadata, the tensor table, and the data section.
  for (size_t cut : {size_t{0}, size_t{3}, size_t{20}, size_t{5000}, size_t{40000}, bytes.size() / 2, bytes.size() - 1}) {
    const std::string path = write_tmp("cut_" + std::to_string(cut) + ".gguf",
                                       std::vector<char>(bytes.begin(), bytes.begin() + cut));
    for (const char* cmd : {"info", "run"}) {
      const std::string extra = std::string(cmd) == "run" ? " -p hi -n 2 --temp 0" : "";
      auto r = test::run_nibble(std::string(cmd) + " -m '" + path + "'" + extra);
      expect_one_line_error(r, path, std::string(cmd) + " on a file cut at " + std::to_string(cut));
    }
  }
}

TEST(GgufBadInput, CorruptFiles) {
  const auto bytes = read_all(kModel);
  struct Damage {
    const char* name;
    size_t at;
    std::vector<char> with;
  };
  const std::vector<Damage> damages = {
      {"magic", 0, {'G', 'G', 'U', 'X'}},
      {"version", 4, {9, 0, 0, 0}},
      {"tensor_count", 8, {char(0xff), char(0xff), char(0xff), char(0xff), char(0xff), char(0xff), 0, 0}},
      {"kv_count", 16, {char(0xff), char(0xff), char(0xff), char(0x7f), 0, 0, 0, 0}},
      {"first_key_length", 24, {char(0xff), char(0xff), char(0xff), char(0xff), 0, 0, 0, 1}},
  };
  for (const auto& d : damages) {
    auto copy = bytes;
    std::copy(d.with.begin(), d.with.end(), copy.begin() + d.at);
    const std::string path = write_tmp(std::string("bad_") + d.name + ".gguf", copy);
    for (const char* cmd : {"info", "run"}) {
      const std::string extra = std::string(cmd) == "run" ? " -p hi -n 2 --temp 0" : "";
      auto r = test::run_nibble(std::string(cmd) + " -m '" + path + "'" + extra);
      expect_one_line_error(r, path, std::string(cmd) + " on damaged " + d.name);
    }
  }
  // Not a GGUF at all.
  const std::string text = write_tmp("text.gguf", std::vector<char>{'h', 'e', 'l', 'l', 'o', '\n'});
  expect_one_line_error(test::run_nibble("info -m '" + text + "'"), text, "text file");
  // Missing file.
  expect_one_line_error(test::run_nibble("run -m /nonexistent/x.gguf -p hi"), "/nonexistent/x.gguf", "missing file");
}

}  // namespace
}  // namespace nibble

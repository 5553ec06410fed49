// Shared helpers for the tokenizer tests: the nine golden tokenizers, loaded once per process.
// Real tokenizers come xz-compressed from NIBBLE_SHARED_DIR/tokenizers and are decompressed in
// memory with `xz -dc` (never copied into the repository).
#pragma once

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace nibble::test {

inline std::string tok_data_dir() { return std::string(NIBBLE_TEST_DATA) + "/tokenizer"; }

inline bool is_real_tokenizer(const std::string& name) { return name.rfind("tiny_", 0) != 0; }

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

inline std::string tokenizer_json_text(const std::string& name) {
  if (!is_real_tokenizer(name)) return read_file(tok_data_dir() + "/" + name + "/tokenizer.json");
  std::string path = std::string(NIBBLE_SHARED_DIR) + "/tokenizers/" + name + "/tokenizer.json.xz";
  return run_capture("xz -dc '" + path + "' 2>/dev/null");
}

// nullptr (and a test failure) when the tokenizer cannot be loaded.
inline const Tokenizer* load_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  std::string text = tokenizer_json_text(name);
  if (text.empty()) {
    ADD_FAILURE() << name << ": could not read tokenizer.json (is ../shared there?)";
    return nullptr;
  }
  auto t = Tokenizer::from_json(text);
  if (!t) {
    ADD_FAILURE() << name << ": " << t.status().message();
    return nullptr;
  }
  return (cache[name] = std::make_unique<Tokenizer>(std::move(t.value()))).get();
}

inline nlohmann::json load_json(const std::string& path) {
  return nlohmann::json::parse(read_file(path), nullptr, false);
}

}  // namespace nibble::test

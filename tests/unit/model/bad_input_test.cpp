// Bad input: every way a model folder can be broken gives a one-line error that names the
// file and the tensor or key, never a crash.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/model.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kSrc = std::string(NIBBLE_TEST_DATA) + "/models/llama3_classic";

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("nibble_bad_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const char* f : {"config.json", "generation_config.json", "model.safetensors"})
      fs::copy_file(fs::path(kSrc) / f, dir_ / f);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const char* f) const { return (dir_ / f).string(); }

  // Rewrites model.safetensors with `edit` applied to its JSON header.
  void edit_header(const std::function<void(json&)>& edit) {
    std::ifstream in(path("model.safetensors"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(bytes[i]);
    json h = json::parse(bytes.substr(8, n));
    edit(h);
    std::string text = h.dump();
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
    out += text + bytes.substr(8 + n);
    std::ofstream(path("model.safetensors"), std::ios::binary | std::ios::trunc) << out;
  }
  void edit_config(const std::function<void(json&)>& edit) {
    std::ifstream in(path("config.json"));
    json c = json::parse(in);
    edit(c);
    std::ofstream(path("config.json"), std::ios::trunc) << c.dump(2);
  }
  void truncate_weights(uint64_t size) { fs::resize_file(path("model.safetensors"), size); }

  // Loads and expects failure whose message contains every fragment and is one line.
  void expect_error(std::initializer_list<std::string> fragments) {
    auto m = Model::load(dir_.string());
    ASSERT_FALSE(m.is_ok()) << "loaded a broken model";
    const std::string& msg = m.status().message();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }

  fs::path dir_;
};

TEST_F(BadInput, MissingFolder) {
  fs::remove_all(dir_);
  expect_error({dir_.string(), "no such model folder"});
}

TEST_F(BadInput, MissingConfig) {
  fs::remove(path("config.json"));
  expect_error({"config.json", "no such file"});
}

TEST_F(BadInput, MissingWeights) {
  fs::remove(path("model.safetensors"));
  expect_error({dir_.string(), "no model.safetensors"});
}

TEST_F(BadInput, TruncatedWeights) {
  truncate_weights(fs::file_size(path("model.safetensors")) / 2);
  expect_error({"model.safetensors", "tensor '", "past the end of the file"});
}

TEST_F(BadInput, FileShorterThanHeaderLength) {
  truncate_weights(5);
  expect_error({"model.safetensors", "too short"});
}

TEST_F(BadInput, HeaderLongerThanFile) {
  truncate_weights(200);
  expect_error({"model.safetensors", "header length", "longer than the file"});
}

TEST_F(BadInput, HeaderNotJson) {
  std::fstream f(path("model.safetensors"), std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(8);
  f.write("\x01\x02garbage", 9);
  f.close();
  expect_error({"model.safetensors", "not a JSON object"});
}

TEST_F(BadInput, UnknownDtype) {
  edit_header([](json& h) { h["model.norm.weight"]["dtype"] = "Q9_9"; });
  expect_error({"model.safetensors", "model.norm.weight", "unknown dtype 'Q9_9'"});
}

TEST_F(BadInput, UnsupportedDtype) {
  edit_header([](json& h) {
    auto& t = h["model.norm.weight"];
    t["dtype"] = "I16";  // same size as bf16, readable but not a float type
  });
  expect_error({"model.safetensors", "model.norm.weight", "dtype i16"});
}

TEST_F(BadInput, WrongShape) {
  // Same byte count, wrong shape: k_proj is [kv_dim 32, hidden 96].
  edit_header([](json& h) { h["model.layers.1.self_attn.k_proj.weight"]["shape"] = {16, 192}; });
  expect_error({"model.safetensors", "model.layers.1.self_attn.k_proj.weight", "shape [16, 192], expected [32, 96]"});
}

TEST_F(BadInput, BytesDisagreeWithShape) {
  edit_header([](json& h) { h["model.norm.weight"]["shape"] = {97}; });
  expect_error({"model.safetensors", "model.norm.weight", "needs"});
}

TEST_F(BadInput, MissingTensor) {
  edit_header([](json& h) { h.erase("model.layers.2.mlp.up_proj.weight"); });
  expect_error({"model.safetensors", "no tensor 'model.layers.2.mlp.up_proj.weight'"});
}

TEST_F(BadInput, UnsupportedArchitecture) {
  edit_config([](json& c) { c["architectures"] = {"FalconForCausalLM"}; });
  expect_error({"config.json", "architecture 'FalconForCausalLM' is not supported"});
}

TEST_F(BadInput, MissingConfigKey) {
  edit_config([](json& c) { c.erase("hidden_size"); });
  expect_error({"config.json", "missing key 'hidden_size'"});
}

TEST_F(BadInput, ConfigKeyOfWrongType) {
  edit_config([](json& c) { c["num_hidden_layers"] = "three"; });
  expect_error({"config.json", "'num_hidden_layers'"});
}

TEST_F(BadInput, UnsupportedRopeType) {
  edit_config([](json& c) { c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; });
  expect_error({"config.json", "rope type 'yarn'"});
}

TEST_F(BadInput, ConfigNotJson) {
  std::ofstream(path("config.json"), std::ios::trunc) << "{ \"architectures\": [";
  expect_error({"config.json", "not valid JSON"});
}

TEST_F(BadInput, UnsupportedQuantization) {
  edit_config([](json& c) { c["quantization_config"] = {{"quant_method", "hqq"}}; });
  expect_error({"config.json", "quant_method 'hqq'"});
}

// The command line: non-zero exit, one line on stderr naming the problem, nothing on stdout.
TEST_F(BadInput, CommandLineReportsOneLine) {
  truncate_weights(fs::file_size(path("model.safetensors")) - 1000);
  const std::string cmd = std::string(NIBBLE_BINARY) + " logits -m " + dir_.string() +
                          " --tokens 1,2,3 2>" + path("err.txt") + " >" + path("out.txt");
  const int rc = std::system(cmd.c_str());
  EXPECT_NE(rc, 0);
  std::ifstream err(path("err.txt"));
  std::string all((std::istreambuf_iterator<char>(err)), {});
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 1) << all;
  EXPECT_NE(all.find("model.safetensors"), std::string::npos) << all;
  EXPECT_NE(all.find("truncated"), std::string::npos) << all;
  EXPECT_EQ(fs::file_size(path("out.txt")), 0u);
}

TEST_F(BadInput, TokenOutsideVocabulary) {
  auto m = Model::load(dir_.string());
  ASSERT_TRUE(m.is_ok());
  const std::string cmd = std::string(NIBBLE_BINARY) + " logits -m " + dir_.string() +
                          " --tokens 1,99999 2>" + path("err.txt") + " >/dev/null";
  EXPECT_NE(std::system(cmd.c_str()), 0);
  std::ifstream err(path("err.txt"));
  std::string all((std::istreambuf_iterator<char>(err)), {});
  EXPECT_NE(all.find("99999"), std::string::npos) << all;
  EXPECT_NE(all.find("vocabulary"), std::string::npos) << all;
}

}  // namespace
}  // namespace nibble

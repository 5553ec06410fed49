// End to end: the built `nibble tokenize` / `nibble detokenize` binary on a tokenizer folder,
// compared with the HF goldens.
#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include "tok_test_util.h"

namespace nibble::test {
namespace {

std::string shell_quote(const std::string& s) { return "'" + s + "'"; }

TEST(TokenizeCli, MatchesGoldens) {
  const std::string bin = NIBBLE_BINARY;
  ASSERT_TRUE(std::filesystem::exists(bin)) << bin;
  const std::string dir = tok_data_dir() + "/tiny_llama3";
  nlohmann::json g = load_json(tok_data_dir() + "/goldens_tiny_llama3.json");
  auto tmp = std::filesystem::temp_directory_path() / ("nibble_tok_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  int checked = 0;
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    if (text.find("<|") == std::string::npos && text.find("Hello") == std::string::npos) continue;
    std::string in = (tmp / "in.txt").string();
    { std::ofstream(in, std::ios::binary) << text; }
    auto ids = nlohmann::json::parse(run_capture(bin + " tokenize -m " + shell_quote(dir) + " < " + in));
    EXPECT_EQ(ids, c["ids"]) << text;
    auto ids_sp = nlohmann::json::parse(
        run_capture(bin + " tokenize --add-special -m " + shell_quote(dir + "/tokenizer.json") + " < " + in));
    EXPECT_EQ(ids_sp, c["ids_special"]) << text;
    { std::ofstream(in, std::ios::binary) << c["ids_special"].dump(); }
    EXPECT_EQ(run_capture(bin + " detokenize -m " + shell_quote(dir) + " < " + in), c["decoded"].get<std::string>());
    ++checked;
  }
  EXPECT_GE(checked, 5);
  // A bad path fails with a message and a non-zero exit code.
  int rc = std::system((bin + " tokenize -m /nonexistent/tok < /dev/null 2>/dev/null").c_str());
  EXPECT_NE(rc, 0);
  std::filesystem::remove_all(tmp);
}

}  // namespace
}  // namespace nibble::test

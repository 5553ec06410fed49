// `nibble tokenize -m PATH [--add-special]`: UTF-8 text on stdin -> JSON array of ids on stdout,
// as HF Tokenizer.encode(text, add_special_tokens=...).ids.
// `nibble detokenize -m PATH [--skip-special]`: JSON array of ids on stdin -> text on stdout.
// PATH is a tokenizer.json file or a folder holding one.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
#include "runtime/model_bundle.h"
#include "tokenizer/tokenizer.h"

namespace nibble::app {

namespace {

std::string read_stdin() {
  std::string s;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) s.append(buf, n);
  return s;
}

struct TokenizeArgs {
  std::string model;
  bool add_special = false;
  bool skip_special = false;
  int repeat = 0;         // > 0: time that many encodes, report on stderr (bench/)
  bool per_line = false;  // with repeat: encode each line as its own call
};

// Median wall time of `repeat` encodes of the input (whole, or one call per line), as one
// JSON line on stderr; used by bench/tokenizer_bench.py. Loading time is not included.
void report_timing(const Tokenizer& tok, const std::string& text, const TokenizeArgs& a) {
  std::vector<std::string> lines;
  if (a.per_line) {
    size_t b = 0;
    for (size_t e; (e = text.find('\n', b)) != std::string::npos; b = e + 1) lines.push_back(text.substr(b, e - b));
    if (b < text.size()) lines.push_back(text.substr(b));
  }
  std::vector<double> secs;
  size_t n_tokens = 0;
  for (int r = 0; r < a.repeat; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    n_tokens = 0;
    if (a.per_line) {
      for (const auto& l : lines) n_tokens += tok.encode(l, a.add_special).size();
    } else {
      n_tokens = tok.encode(text, a.add_special).size();
    }
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(secs.begin(), secs.end());
  std::fprintf(stderr, "{\"bytes\":%zu,\"tokens\":%zu,\"calls\":%zu,\"median_s\":%.6f,\"min_s\":%.6f}\n",
               text.size(), n_tokens, a.per_line ? lines.size() : size_t(1), secs[secs.size() / 2], secs[0]);
}

int run_tokenize(const TokenizeArgs& a) {
  auto tok = load_tokenizer(a.model);  // a folder, a tokenizer.json or a .gguf
  if (!tok) return report_error(tok.status());
  std::string text = read_stdin();
  if (a.repeat > 0) report_timing(tok.value(), text, a);
  std::vector<int32_t> ids = tok->encode(text, a.add_special);
  std::string out = "[";
  for (size_t k = 0; k < ids.size(); ++k) {
    if (k) out += ',';
    out += std::to_string(ids[k]);
  }
  out += "]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int run_detokenize(const TokenizeArgs& a) {
  auto tok = load_tokenizer(a.model);  // a folder, a tokenizer.json or a .gguf
  if (!tok) return report_error(tok.status());
  std::string in = read_stdin();
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_array())
    return report_error(Status::invalid("detokenize: stdin must be a JSON array of ids"));
  std::vector<int32_t> ids;
  for (const auto& e : j) {
    if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > INT32_MAX)
      return report_error(Status::invalid("detokenize: ids must be non-negative integers"));
    ids.push_back(e.get<int32_t>());
  }
  std::string text = tok->decode(ids, a.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

const bool kTokenizeRegistered = register_command(
    {"tokenize", "Text on stdin -> token ids (JSON array) on stdout", [](CLI::App& sub) {
       auto a = std::make_shared<TokenizeArgs>();
       sub.add_option("-m,--model", a->model, "tokenizer.json, or a folder holding one")->required();
       sub.add_flag("--add-special", a->add_special, "add the post-processor's special tokens (BOS...)");
       sub.add_option("--repeat", a->repeat, "time N encodes; JSON timing on stderr");
       sub.add_flag("--per-line", a->per_line, "with --repeat: one encode call per input line");
       return std::function<int()>([a] { return run_tokenize(*a); });
     }});

const bool kDetokenizeRegistered = register_command(
    {"detokenize", "Token ids (JSON array) on stdin -> text on stdout", [](CLI::App& sub) {
       auto a = std::make_shared<TokenizeArgs>();
       sub.add_option("-m,--model", a->model, "tokenizer.json, or a folder holding one")->required();
       sub.add_flag("--skip-special", a->skip_special, "leave special tokens out of the text");
       return std::function<int()>([a] { return run_detokenize(*a); });
     }});

}  // namespace

}  // namespace nibble::app

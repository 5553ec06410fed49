// nibble logits -m DIR --tokens 1,2,3: one row of vocab-size fp32 logits per input position,
// as JSON {"logits": [[...], ...]}.
#include <cstdio>

#include "command.h"
#include "model/model.h"
#include "runtime/single_sequence.h"

namespace nibble::app {
namespace {

struct Options {
  std::string model;
  std::string tokens;
  int chunk = 0;
  std::string numerics = "exact";
};

int run(const Options& o) {
  auto tokens = parse_token_list(o.tokens);
  if (!tokens) return report_error(tokens.status());
  LoadOptions load;
  load.numerics = o.numerics == "llamacpp" ? Numerics::kLlamaCpp : Numerics::kExact;
  auto model = Model::load(o.model, load);
  if (!model) return report_error(model.status());
  auto logits = sequence_logits(**model, *tokens, o.chunk);
  if (!logits) return report_error(logits.status());
  const size_t vocab = (*model)->config().vocab_size;
  std::string out = "{\"logits\": [";
  for (size_t r = 0; r < tokens->size(); ++r) {
    out += r ? ",\n[" : "\n[";
    for (size_t i = 0; i < vocab; ++i) {
      if (i) out += ',';
      out += fmt::format("{}", (*logits)[r * vocab + i]);  // shortest round-trip form
    }
    out += ']';
  }
  out += "]}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

const bool registered = register_command({
    "logits", "Print the logits of every position of a token sequence as JSON",
    [](CLI::App& sub) {
      auto o = std::make_shared<Options>();
      sub.add_option("-m,--model", o->model, "model folder (config.json + safetensors)")->required();
      sub.add_option("--tokens", o->tokens, "comma-separated token ids, e.g. 1,2,3")->required();
      sub.add_option("--chunk", o->chunk, "prefill in chunks of this many tokens (0: all at once)");
      sub.add_option("--numerics", o->numerics, "exact (fp32, the oracle) or llamacpp (llama.cpp's CPU roundings)")
          ->check(CLI::IsMember({"exact", "llamacpp"}))
          ->capture_default_str();
      return [o] { return run(*o); };
    }});

}  // namespace
}  // namespace nibble::app

// nibble info -m DIR: what a model is and what it needs, read from its own files.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"
#include "model/model.h"

namespace nibble::app {
namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.2f} {}", b, units[u]);
}

struct Options {
  std::string model;
  bool json = false;
};

int run(const Options& o) {
  auto model = Model::load(o.model, LoadOptions{.prefault = false});  // metadata only
  if (!model) return report_error(model.status());
  const ModelConfig& c = (*model)->config();
  const WeightStats& s = (*model)->stats();
  const size_t kv_token = KvCache::bytes_per_token(c.n_layers, {16, c.n_kv_heads, c.head_dim});
  const size_t kv_ctx = kv_token * c.max_position_embeddings;
  int n_sliding = 0;
  for (const auto& l : c.layers) n_sliding += l.sliding;

  if (o.json) {
    nlohmann::json j = {
        {"architecture", c.architecture}, {"model_type", c.model_type},
        {"parameters", s.n_params}, {"weight_bytes", s.n_bytes},
        {"params_by_dtype", s.params_by_dtype}, {"context_length", c.max_position_embeddings},
        {"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size}, {"layers", c.n_layers},
        {"heads", c.n_heads}, {"kv_heads", c.n_kv_heads}, {"head_dim", c.head_dim},
        {"intermediate_size", c.intermediate_size}, {"sliding_layers", n_sliding},
        {"sliding_window", c.sliding_window}, {"tied_embeddings", c.tie_word_embeddings},
        {"kv_bytes_per_token", kv_token}, {"memory_bytes_full_context", s.n_bytes + kv_ctx}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::string dtypes;
  for (const auto& [d, n] : s.params_by_dtype)
    dtypes += fmt::format("{}{} ({:.1f}%)", dtypes.empty() ? "" : ", ", d, 100.0 * n / s.n_params);
  std::string out;
  out += fmt::format("architecture     {} ({})\n", c.architecture, c.model_type);
  out += fmt::format("parameters       {} ({:.3f} B)\n", s.n_params, s.n_params / 1e9);
  out += fmt::format("weights          {} stored as {}\n", human_bytes(s.n_bytes), dtypes);
  out += fmt::format("context length   {}\n", c.max_position_embeddings);
  out += fmt::format("shape            {} layers, hidden {}, MLP {}, vocab {}\n", c.n_layers,
                     c.hidden_size, c.intermediate_size, c.vocab_size);
  out += fmt::format("attention        {} heads, {} KV heads, head dim {}{}{}\n", c.n_heads,
                     c.n_kv_heads, c.head_dim, c.attention_bias ? ", q/k/v bias" : "",
                     c.qk_norm ? ", q/k norm" : "");
  if (n_sliding)
    out += fmt::format("sliding window   {} tokens on {} of {} layers\n", c.sliding_window, n_sliding,
                       c.n_layers);
  out += fmt::format("rope             {} (theta {})\n", rope_type_name(c.layers[0].rope.type),
                     c.layers[0].rope.theta);
  out += fmt::format("embeddings       {}\n", c.tie_word_embeddings ? "tied to the LM head" : "untied");
  out += fmt::format("KV cache         {} per token (fp32, CPU backend)\n", human_bytes(kv_token));
  out += fmt::format("memory needed    {} (weights + KV cache for the full {}-token context)\n",
                     human_bytes(static_cast<double>(s.n_bytes + kv_ctx)), c.max_position_embeddings);
  std::fputs(out.c_str(), stdout);
  return 0;
}

const bool registered = register_command({
    "info", "Describe a model: architecture, parameters, dtypes, context, memory",
    [](CLI::App& sub) {
      auto o = std::make_shared<Options>();
      sub.add_option("-m,--model", o->model, "model folder")->required();
      sub.add_flag("--json", o->json, "print JSON");
      return [o] { return run(*o); };
    }});

}  // namespace
}  // namespace nibble::app

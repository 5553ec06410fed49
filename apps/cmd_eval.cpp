// nibble eval -m PATH (--text FILE | --tokens-file FILE) [--kl-base PATH2] [--ctx N]
// Perplexity as llama.cpp's perplexity tool computes it: the tokens are cut into windows of
// --ctx tokens; each window is evaluated from scratch and only its second half is scored (every
// scored token then has at least ctx/2 tokens of context). With --kl-base, the same windows go
// through a second model and we report mean KL(base || model) per scored token and the fraction
// of tokens where both models' top-1 predictions agree. Prints one JSON object.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "runtime/single_sequence.h"
#include "tokenizer/tokenizer.h"

namespace nibble::app {
namespace {

struct Options {
  std::string model, text, tokens_file, kl_base;
  int ctx = 512;
  int max_windows = 0;
};

Result<std::vector<int32_t>> read_tokens(const Options& o) {
  if (!o.tokens_file.empty()) {
    std::ifstream f(o.tokens_file);
    auto j = nlohmann::json::parse(f, nullptr, false);
    if (!j.is_array()) return Status::invalid("{}: expected a JSON array of token ids", o.tokens_file);
    std::vector<int32_t> ids;
    for (const auto& v : j) {
      if (!v.is_number_integer()) return Status::invalid("{}: non-integer token id", o.tokens_file);
      ids.push_back(v.get<int32_t>());
    }
    return ids;
  }
  std::ifstream f(o.text, std::ios::binary);
  if (!f) return Status::not_found("{}: cannot open", o.text);
  std::stringstream ss;
  ss << f.rdbuf();
  NB_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::from_json_file(o.model + "/tokenizer.json"));
  return tok.encode(ss.str(), /*add_special_tokens=*/false);
}

// log-softmax of one row, in double.
void log_softmax(const float* x, int n, std::vector<double>& out) {
  out.resize(n);
  double m = x[0];
  for (int i = 1; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(x[i] - m);
  const double lse = m + std::log(s);
  for (int i = 0; i < n; ++i) out[i] = x[i] - lse;
}

int run(const Options& o) {
  if (o.text.empty() == o.tokens_file.empty()) return report_error(Status::invalid("give one of --text, --tokens-file"));
  if (o.ctx < 4) return report_error(Status::invalid("--ctx {} is too small", o.ctx));
  auto model = Model::load(o.model);
  if (!model) return report_error(model.status());
  auto tokens = read_tokens(o);
  if (!tokens) return report_error(tokens.status());
  std::unique_ptr<Model> base;
  if (!o.kl_base.empty()) {
    auto b = Model::load(o.kl_base);
    if (!b) return report_error(b.status());
    base = std::move(*b);
    if (base->config().vocab_size != (*model)->config().vocab_size)
      return report_error(Status::invalid("--kl-base vocab {} differs from the model's {}",
                                          base->config().vocab_size, (*model)->config().vocab_size));
  }
  const int vocab = (*model)->config().vocab_size;
  const int64_t n_windows = static_cast<int64_t>(tokens->size()) / o.ctx;
  if (n_windows == 0) return report_error(Status::invalid("{} tokens: fewer than --ctx {}", tokens->size(), o.ctx));
  const int64_t use = o.max_windows > 0 ? std::min<int64_t>(n_windows, o.max_windows) : n_windows;
  const int first = o.ctx / 2;
  double nll = 0, kl = 0;
  int64_t scored = 0, agree = 0;
  std::vector<double> lp, lq;
  for (int64_t w = 0; w < use; ++w) {
    std::span<const int32_t> win(tokens->data() + w * o.ctx, o.ctx);
    auto logits = sequence_logits(**model, win);
    if (!logits) return report_error(logits.status());
    std::vector<float> base_logits;
    if (base) {
      auto b = sequence_logits(*base, win);
      if (!b) return report_error(b.status());
      base_logits = std::move(*b);
    }
    // Position j predicts token j + 1: score j in [first, ctx - 1), as llama.cpp does.
    for (int j = first; j < o.ctx - 1; ++j) {
      const float* row = logits->data() + static_cast<size_t>(j) * vocab;
      log_softmax(row, vocab, lq);
      nll -= lq[win[j + 1]];
      ++scored;
      if (base) {
        const float* brow = base_logits.data() + static_cast<size_t>(j) * vocab;
        log_softmax(brow, vocab, lp);
        double k = 0;
        for (int i = 0; i < vocab; ++i) k += std::exp(lp[i]) * (lp[i] - lq[i]);
        kl += k;
        agree += (std::max_element(row, row + vocab) - row) == (std::max_element(brow, brow + vocab) - brow);
      }
    }
  }
  const auto& st = (*model)->stats();
  nlohmann::ordered_json out;
  out["model"] = o.model;
  out["tokens"] = tokens->size();
  out["windows"] = use;
  out["ctx"] = o.ctx;
  out["scored"] = scored;
  out["perplexity"] = std::exp(nll / scored);
  out["bits_per_weight"] = st.n_params ? 8.0 * static_cast<double>(st.n_bytes) / static_cast<double>(st.n_params) : 0.0;
  if (base) {
    out["kl_base"] = o.kl_base;
    out["mean_kl"] = kl / scored;
    out["top1_agreement"] = static_cast<double>(agree) / static_cast<double>(scored);
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

const bool registered = register_command({
    "eval", "Perplexity over a text (llama.cpp's windowing), and KL / top-1 agreement against a base model",
    [](CLI::App& sub) {
      auto o = std::make_shared<Options>();
      sub.add_option("-m,--model", o->model, "model folder")->required();
      sub.add_option("--text", o->text, "text file, tokenized with the model's tokenizer.json");
      sub.add_option("--tokens-file", o->tokens_file, "JSON array of token ids instead of --text");
      sub.add_option("--kl-base", o->kl_base, "reference model folder for KL divergence and top-1 agreement");
      sub.add_option("--ctx", o->ctx, "window length in tokens (default 512); the second half is scored");
      sub.add_option("--max-windows", o->max_windows, "evaluate at most this many windows (0: all)");
      return [o] { return run(*o); };
    }});

}  // namespace
}  // namespace nibble::app

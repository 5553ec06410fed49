// nibble eval -m PATH [-m PATH ...] (--text FILE | --tokens-file FILE) [--kl-base PATH2] [--ctx N]
// Perplexity as llama.cpp's perplexity tool computes it: the tokens are cut into windows of
// --ctx tokens; each window is evaluated from scratch and only its second half is scored (every
// scored token then has at least ctx/2 tokens of context). With --kl-base, the same windows go
// through a second model and we report mean KL(base || model) per scored token and the fraction
// of tokens where both models' top-1 predictions agree. PATH may be a model folder or a .gguf
// file. Several -m share one pass of the base over each window (the base costs as much as a
// model, so comparing five formats costs six passes, not ten). Prints one JSON object per model
// (one line each), with the base's own perplexity as base_perplexity.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "command.h"
#include "runtime/model_bundle.h"
#include "runtime/single_sequence.h"
#include "tokenizer/tokenizer.h"

namespace nibble::app {
namespace {

struct Options {
  std::vector<std::string> models;
  std::string text, tokens_file, kl_base;
  int ctx = 512;
  int max_windows = 0;
  bool progress = false;
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
  // The first model's tokenizer (tokenizer.json of a folder, or the GGUF metadata); every model
  // compared must share the vocabulary, which run() checks by size.
  NB_ASSIGN_OR_RETURN(Tokenizer tok, load_tokenizer(o.models[0]));
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

struct Totals {
  double nll = 0, nll2 = 0, kl = 0, kl2 = 0;  // sums and sums of squares over scored tokens
  int64_t agree = 0;
};

// Standard error of the mean of n samples with sum s and sum of squares s2 (as llama.cpp's
// perplexity tool reports its ± figures).
double std_err(double s, double s2, int64_t n) {
  if (n < 2) return 0;
  const double mean = s / n;
  return std::sqrt(std::max(0.0, (s2 / n - mean * mean) / (n - 1)));
}

int run(const Options& o) {
  if (o.text.empty() == o.tokens_file.empty()) return report_error(Status::invalid("give one of --text, --tokens-file"));
  if (o.ctx < 4) return report_error(Status::invalid("--ctx {} is too small", o.ctx));
  std::vector<std::unique_ptr<Model>> models;
  for (const auto& path : o.models) {
    auto m = Model::load(path);
    if (!m) return report_error(m.status());
    models.push_back(std::move(*m));
  }
  auto tokens = read_tokens(o);
  if (!tokens) return report_error(tokens.status());
  std::unique_ptr<Model> base;
  if (!o.kl_base.empty()) {
    auto b = Model::load(o.kl_base);
    if (!b) return report_error(b.status());
    base = std::move(*b);
  }
  const int vocab = models[0]->config().vocab_size;
  for (size_t i = 0; i < models.size(); ++i)
    if (models[i]->config().vocab_size != vocab)
      return report_error(Status::invalid("{}: vocab {} differs from {}'s {}", o.models[i],
                                          models[i]->config().vocab_size, o.models[0], vocab));
  if (base && base->config().vocab_size != vocab)
    return report_error(Status::invalid("--kl-base vocab {} differs from the model's {}", base->config().vocab_size, vocab));
  for (int32_t t : *tokens)
    if (t < 0 || t >= vocab) return report_error(Status::invalid("token id {} is outside the vocabulary ({})", t, vocab));
  const int64_t n_windows = static_cast<int64_t>(tokens->size()) / o.ctx;
  if (n_windows == 0) return report_error(Status::invalid("{} tokens: fewer than --ctx {}", tokens->size(), o.ctx));
  const int64_t use = o.max_windows > 0 ? std::min<int64_t>(n_windows, o.max_windows) : n_windows;
  const int first = o.ctx / 2;
  std::vector<Totals> tot(models.size());
  double base_nll = 0, base_nll2 = 0;
  int64_t scored = 0;
  std::vector<double> lq;
  std::vector<std::vector<double>> lp, pp;  // [scored rows of the window][vocab] base log-probs, probs
  std::vector<int32_t> base_top;       // [scored rows of the window]
  for (int64_t w = 0; w < use; ++w) {
    std::span<const int32_t> win(tokens->data() + w * o.ctx, o.ctx);
    // Position j predicts token j + 1: score j in [first, ctx - 1), as llama.cpp does.
    if (base) {
      auto b = sequence_logits(*base, win);
      if (!b) return report_error(b.status());
      lp.resize(o.ctx - 1 - first);
      pp.resize(lp.size());
      base_top.resize(lp.size());
      for (int j = first; j < o.ctx - 1; ++j) {
        const float* brow = b->data() + static_cast<size_t>(j) * vocab;
        log_softmax(brow, vocab, lp[j - first]);
        pp[j - first].resize(vocab);
        for (int i = 0; i < vocab; ++i) pp[j - first][i] = std::exp(lp[j - first][i]);
        base_top[j - first] = static_cast<int32_t>(std::max_element(brow, brow + vocab) - brow);
        base_nll -= lp[j - first][win[j + 1]];
        base_nll2 += lp[j - first][win[j + 1]] * lp[j - first][win[j + 1]];
      }
    }
    for (size_t m = 0; m < models.size(); ++m) {
      auto logits = sequence_logits(*models[m], win);
      if (!logits) return report_error(logits.status());
      for (int j = first; j < o.ctx - 1; ++j) {
        const float* row = logits->data() + static_cast<size_t>(j) * vocab;
        log_softmax(row, vocab, lq);
        tot[m].nll -= lq[win[j + 1]];
        tot[m].nll2 += lq[win[j + 1]] * lq[win[j + 1]];
        if (base) {
          const std::vector<double>& p = lp[j - first];
          const std::vector<double>& e = pp[j - first];
          double k = 0;
          for (int i = 0; i < vocab; ++i) k += e[i] * (p[i] - lq[i]);
          tot[m].kl += k;
          tot[m].kl2 += k * k;
          tot[m].agree += (std::max_element(row, row + vocab) - row) == base_top[j - first];
        }
      }
    }
    scored += o.ctx - 1 - first;
    if (o.progress) std::fprintf(stderr, "eval: window %lld/%lld\n", static_cast<long long>(w + 1), static_cast<long long>(use));
  }
  for (size_t m = 0; m < models.size(); ++m) {
    const auto& st = models[m]->stats();
    nlohmann::ordered_json out;
    out["model"] = o.models[m];
    out["tokens"] = tokens->size();
    out["windows"] = use;
    out["ctx"] = o.ctx;
    out["scored"] = scored;
    out["perplexity"] = std::exp(tot[m].nll / scored);
    // exp(mean nll) * standard error of the mean nll, llama.cpp's "PPL = x +/- e".
    out["perplexity_err"] = std::exp(tot[m].nll / scored) * std_err(tot[m].nll, tot[m].nll2, scored);
    out["bits_per_weight"] = st.n_params ? 8.0 * static_cast<double>(st.n_bytes) / static_cast<double>(st.n_params) : 0.0;
    if (base) {
      out["kl_base"] = o.kl_base;
      out["base_perplexity"] = std::exp(base_nll / scored);
      out["base_perplexity_err"] = std::exp(base_nll / scored) * std_err(base_nll, base_nll2, scored);
      const auto& bs = base->stats();
      out["base_bits_per_weight"] = bs.n_params ? 8.0 * static_cast<double>(bs.n_bytes) / static_cast<double>(bs.n_params) : 0.0;
      out["mean_kl"] = tot[m].kl / scored;
      out["mean_kl_err"] = std_err(tot[m].kl, tot[m].kl2, scored);
      const double p = static_cast<double>(tot[m].agree) / static_cast<double>(scored);
      out["top1_agreement"] = p;
      out["top1_agreement_err"] = scored > 1 ? std::sqrt(p * (1 - p) / (scored - 1)) : 0.0;
    }
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}

const bool registered = register_command({
    "eval", "Perplexity over a text (llama.cpp's windowing), and KL / top-1 agreement against a base model",
    [](CLI::App& sub) {
      auto o = std::make_shared<Options>();
      sub.add_option("-m,--model", o->models, "model folder or .gguf file (repeat to compare several against one --kl-base)")->required();
      sub.add_option("--text", o->text, "text file, tokenized with the (first) model's tokenizer");
      sub.add_option("--tokens-file", o->tokens_file, "JSON array of token ids instead of --text");
      sub.add_option("--kl-base", o->kl_base, "reference model (folder or .gguf) for KL divergence and top-1 agreement");
      sub.add_option("--ctx", o->ctx, "window length in tokens (default 512); the second half is scored");
      sub.add_option("--max-windows", o->max_windows, "evaluate at most this many windows (0: all)");
      sub.add_flag("--progress", o->progress, "print one line per window to stderr");
      return [o] { return run(*o); };
    }});

}  // namespace
}  // namespace nibble::app

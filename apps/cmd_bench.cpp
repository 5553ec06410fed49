// nibble bench: prefill and decode throughput of a model, or of any shape with random weights
// (`--config config.json --random-weights`), on the CPU backend.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "command.h"
#include "io/random_source.h"
#include "model/model.h"

namespace nibble::app {
namespace {

struct Options {
  std::string model;
  std::string config;
  bool random_weights = false;
  int prompt = 128;
  int gen = 32;
  int batch = 1;
  bool json = false;
  uint64_t seed = 0;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int32_t argmax(const float* row, int n) { return static_cast<int32_t>(std::max_element(row, row + n) - row); }

int run(const Options& o) {
  Result<std::unique_ptr<Model>> model = Status::invalid("bench: give -m DIR, or --config FILE with --random-weights");
  std::string what = o.model;
  if (!o.config.empty()) {
    if (!o.random_weights)
      return report_error(Status::invalid("bench: --config needs --random-weights (or use -m DIR)"));
    auto cfg = load_model_config_file(o.config);
    if (!cfg) return report_error(cfg.status());
    model = Model::create(std::move(*cfg), std::make_unique<RandomSource>(o.seed));
    what = o.config + " (random weights)";
  } else if (!o.model.empty()) {
    model = Model::load(o.model);
  }
  if (!model) return report_error(model.status());
  const Model& m = **model;
  const ModelConfig& c = m.config();
  if (o.prompt < 1 || o.gen < 1 || o.batch < 1)
    return report_error(Status::invalid("bench: --prompt, --gen and --batch must be at least 1"));
  if (o.prompt + o.gen > c.max_position_embeddings)
    return report_error(Status::invalid("bench: {} + {} tokens exceed the context length {}", o.prompt,
                                        o.gen, c.max_position_embeddings));

  auto kv = m.make_cache(o.batch * (o.prompt + o.gen));
  std::vector<BlockTable> tables(o.batch);
  std::mt19937 rng(static_cast<uint32_t>(o.seed));
  std::uniform_int_distribution<int32_t> tok(0, c.vocab_size - 1);
  std::vector<std::vector<int32_t>> prompts(o.batch, std::vector<int32_t>(o.prompt));
  for (auto& p : prompts)
    for (auto& t : p) t = tok(rng);

  // Prefill: every prompt in one forward call.
  std::vector<float> logits;
  ForwardBatch prefill;
  for (int b = 0; b < o.batch; ++b) {
    if (auto s = kv->reserve(tables[b], o.prompt); !s) return report_error(s);
    prefill.add(prompts[b], 0, tables[b], kv->block_size(), false);
  }
  auto t0 = Clock::now();
  if (auto s = m.forward(prefill, *kv, logits); !s) return report_error(s);
  const double t_prefill = seconds_since(t0);
  std::vector<int32_t> next(o.batch);
  for (int b = 0; b < o.batch; ++b) {
    tables[b].n_tokens = o.prompt;
    next[b] = argmax(logits.data() + static_cast<size_t>(b) * c.vocab_size, c.vocab_size);
  }

  // Decode: one token per sequence per step, greedy.
  t0 = Clock::now();
  for (int step = 0; step < o.gen; ++step) {
    ForwardBatch batch;
    for (int b = 0; b < o.batch; ++b) {
      if (auto s = kv->reserve(tables[b], tables[b].n_tokens + 1); !s) return report_error(s);
      batch.add(std::span(&next[b], 1), tables[b].n_tokens, tables[b], kv->block_size(), false);
    }
    if (auto s = m.forward(batch, *kv, logits); !s) return report_error(s);
    for (int b = 0; b < o.batch; ++b) {
      ++tables[b].n_tokens;
      next[b] = argmax(logits.data() + static_cast<size_t>(b) * c.vocab_size, c.vocab_size);
    }
  }
  const double t_decode = seconds_since(t0);

  const double prefill_tps = o.batch * o.prompt / t_prefill;
  const double decode_tps = o.batch * o.gen / t_decode;
  const int threads = omp_get_max_threads();
  if (o.json) {
    nlohmann::json j = {{"device", "cpu"}, {"threads", threads}, {"model", what},
                        {"architecture", c.architecture}, {"parameters", m.stats().n_params},
                        {"batch", o.batch}, {"prompt_tokens", o.prompt}, {"gen_tokens", o.gen},
                        {"prefill_tok_per_s", prefill_tps}, {"ttft_ms", t_prefill * 1e3},
                        {"decode_tok_per_s", decode_tps}, {"decode_ms_per_step", t_decode * 1e3 / o.gen}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model    %s (%s, %.3f B params)\n", what.c_str(), c.architecture.c_str(), m.stats().n_params / 1e9);
  std::printf("device   cpu, %d threads\n", threads);
  std::printf("%-8s %8s %8s %12s %14s\n", "phase", "batch", "tokens", "tok/s", "ms");
  std::printf("%-8s %8d %8d %12.1f %14.1f  (time to first token)\n", "prefill", o.batch, o.prompt,
              prefill_tps, t_prefill * 1e3);
  std::printf("%-8s %8d %8d %12.1f %14.2f  (per step)\n", "decode", o.batch, o.gen, decode_tps,
              t_decode * 1e3 / o.gen);
  return 0;
}

const bool registered = register_command({
    "bench", "Measure prefill and decode tokens/s",
    [](CLI::App& sub) {
      auto o = std::make_shared<Options>();
      sub.add_option("-m,--model", o->model, "model folder");
      sub.add_option("--config", o->config, "a config.json to build the model from (with --random-weights)");
      sub.add_flag("--random-weights", o->random_weights, "random bf16 weights of the config's shape");
      sub.add_option("--prompt", o->prompt, "prompt tokens per sequence")->capture_default_str();
      sub.add_option("--gen", o->gen, "generated tokens per sequence")->capture_default_str();
      sub.add_option("--batch", o->batch, "sequences decoded together")->capture_default_str();
      sub.add_option("--seed", o->seed, "seed for random weights and prompts");
      sub.add_flag("--json", o->json, "print JSON");
      return [o] { return run(*o); };
    }});

}  // namespace
}  // namespace nibble::app

// nibble bench: prefill and decode throughput of a model, or of any shape with random weights
// (`--config config.json --random-weights`), on the CPU or (--device cuda) the GPU backend.
// With --out, appends an `e2e` record to a bench/results JSON file (docs/gpu_backend.md).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "command.h"
#include "io/random_source.h"
#include "model/model.h"
#include "runtime/sampler.h"
#ifdef NIBBLE_HAVE_CUDA
#include "gemv_bench.h"
#include "model/cuda/cuda_model.h"
#endif

namespace nibble::app {
namespace {

struct Options {
  std::string model;
  std::string config;
  bool random_weights = false;
  std::string device = "cpu";
  std::string quant = "nf4";  // random GPU weights: nf4, int4, mxfp4, bf16
  int prompt = 128;
  int gen = 32;
  int batch = 1;
  bool json = false;
  bool no_graphs = false;
  std::string nf4_scales = "auto";
  bool kernels = false;  // the 4-bit GEMV benchmark instead of a model
  bool quick = false;
  std::string out;     // results file to append an e2e record to
  std::string anchor;  // JSON lines from bench/e2e_anchor.py, for the same-run anchor figures
  std::string llamacpp_anchor;  // with --kernels: bench/llamacpp_mulmat.cpp's JSON (llama.cpp Q4_0/MXFP4)
  uint64_t seed = 0;
  SamplingParams sampling = [] {  // temperature 0: greedy decode (forward_greedy), else forward_sample
    SamplingParams p;
    p.temperature = 0.0f;
    return p;
  }();
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string today() {
  std::time_t t = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

struct Timing {
  double prefill_s = 0, decode_s = 0;
};

// Prefill every prompt in one forward call, then `gen` decode steps of the whole batch: greedy, or
// with `sp` (each sequence its own Sampler seeded from sp.seed + its index; the draw on the device
// when the executor picks there, as a server's decode loop would).
Result<Timing> run_once(const Executor& m, int batch, int prompt, int gen, uint64_t seed, const SamplingParams& sp) {
  const ModelConfig& c = m.config();
  const int per_seq = (prompt + gen + 15) / 16 * 16;  // whole blocks per sequence
  NB_ASSIGN_OR_RETURN(auto kv, m.make_kv_cache(batch * per_seq));
  std::vector<BlockTable> tables(batch);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int32_t> tok(0, c.vocab_size - 1);
  std::vector<std::vector<int32_t>> prompts(batch, std::vector<int32_t>(prompt));
  for (auto& p : prompts)
    for (auto& t : p) t = tok(rng);
  Timing t;
  std::vector<int32_t> next;
  ForwardBatch prefill;
  for (int b = 0; b < batch; ++b) {
    NB_TRY(kv->reserve(tables[b], prompt));
    prefill.add(prompts[b], 0, tables[b], kv->block_size(), false);
  }
  auto t0 = Clock::now();
  if (Status st = m.forward_greedy(prefill, *kv, next); !st) return Status(st.code(), "prefill: " + st.message());
  t.prefill_s = seconds_since(t0);
  for (auto& tb : tables) tb.n_tokens = prompt;
  const bool sample = ops::sampling_uses_draw(sp);
  std::vector<Sampler> samplers;
  std::vector<std::vector<int32_t>> history = prompts;  // for the repetition penalty
  for (int i = 0; i < batch && sample; ++i) {
    SamplingParams p = sp;
    p.seed = sp.seed + static_cast<uint64_t>(i);
    samplers.emplace_back(p);
  }
  // Decode pipelined, as Session::generate does (docs/engine.md): step s + 1 is submitted with
  // each sequence's token as prev_pick(its row) before step s's picks are collected.
  std::vector<SampleRequest> requests(batch, SampleRequest{sp, {}, 0.0});
  auto submit = [&](int step) -> Status {
    ForwardBatch b;
    for (int i = 0; i < batch; ++i) {
      const int32_t token = step == 0 ? next[i] : prev_pick(i);
      NB_TRY(kv->reserve(tables[i], prompt + step + 1));
      b.add(std::span(&token, 1), prompt + step, tables[i], kv->block_size(), false);
      if (sample) {
        history[i].push_back(token);
        requests[i] = {samplers[i].params(), history[i], samplers[i].draw()};
      }
    }
    return m.submit(b, *kv, requests);
  };
  t0 = Clock::now();
  if (Status st = submit(0); !st) return Status(st.code(), "decode step 0: " + st.message());
  for (int step = 0; step < gen; ++step) {
    if (step + 1 < gen)
      if (Status st = submit(step + 1); !st) return Status(st.code(), fmt::format("decode step {}: {}", step + 1, st.message()));
    std::vector<int32_t> out;
    if (Status st = m.collect(out); !st) return Status(st.code(), fmt::format("decode step {}: {}", step, st.message()));
    if (sample && step + 1 < gen)
      for (int i = 0; i < batch; ++i) history[i][prompt + step + 1] = out[i];  // the placeholder, now known
  }
  for (auto& tb : tables) tb.n_tokens = prompt + gen;
  t.decode_s = seconds_since(t0);
  return t;
}

// The anchor's decode tok/s for this batch from bench/e2e_anchor.py's JSON lines, or 0.
double anchor_tok_per_s(const std::string& path, int batch, std::string* variant) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("batch", 0) == batch && j.contains("tok_per_s")) {
      *variant = j.value("variant", "anchor");
      return j["tok_per_s"].get<double>();
    }
  }
  return 0;
}

// `nibble bench --kernels`: the GEMV benchmark (bench/gemv_bench.cpp) in process; with --out its
// gemv, summary and chain lists join the results file next to the e2e records.
int run_kernels(const Options& o) {
#ifdef NIBBLE_HAVE_CUDA
  const std::string tmp = o.out.empty() ? "" : o.out + ".gemv.tmp";
  std::vector<std::string> args = {"nibble bench --kernels"};
  if (!tmp.empty()) args.insert(args.end(), {"--out", tmp});
  if (!o.anchor.empty()) args.insert(args.end(), {"--anchors", o.anchor});
  if (!o.llamacpp_anchor.empty()) args.insert(args.end(), {"--llamacpp-anchors", o.llamacpp_anchor});
  if (o.quick) args.push_back("--quick");
  args.insert(args.end(), {"--nf4-scales", o.nf4_scales == "auto" ? "fp16" : o.nf4_scales});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (const int rc = gemv_bench_main(static_cast<int>(argv.size()), argv.data()); rc != 0 || tmp.empty()) return rc;
  std::ifstream in(tmp);
  nlohmann::json g = nlohmann::json::parse(in, nullptr, false);
  if (!g.is_object()) return report_error(Status::internal("bench --kernels: {} is not JSON", tmp));
  nlohmann::json doc;
  if (std::ifstream prev(o.out); prev) doc = nlohmann::json::parse(prev, nullptr, false);
  if (!doc.is_object()) doc = nlohmann::json::object();
  for (const char* key : {"device", "date", "sm_count", "copy_TBps", "method", "gemv", "summary", "chain", "pdl", "nf4_scales"})
    if (g.contains(key)) doc[key] = g[key];
  std::ofstream(o.out) << doc.dump(2) << "\n";
  std::filesystem::remove(tmp);
  return 0;
#else
  return report_error(Status::unsupported("bench --kernels: this build has no CUDA backend"));
#endif
}

int run(const Options& o) {
  if (o.kernels) return run_kernels(o);
  if (o.prompt < 1 || o.gen < 1 || o.batch < 1)
    return report_error(Status::invalid("bench: --prompt, --gen and --batch must be at least 1"));
  std::unique_ptr<Executor> exec;
  std::unique_ptr<Model> cpu;
  std::string what = o.model;
  ModelConfig config;
  if (!o.config.empty()) {
    if (!o.random_weights) return report_error(Status::invalid("bench: --config needs --random-weights (or use -m DIR)"));
    auto cfg = load_model_config_file(o.config);
    if (!cfg) return report_error(cfg.status());
    config = *cfg;
    what = o.config + " (random weights)";
  } else if (o.model.empty()) {
    return report_error(Status::invalid("bench: give -m DIR, or --config FILE with --random-weights"));
  }

  double copy_bw = 0;
  size_t step_bytes = 0;
  std::string format = "model";
  std::string nf4_absmax;  // the forms NF4 absmax took on the GPU (CudaModel::nf4_absmax)
  if (o.device == "cuda") {
#ifdef NIBBLE_HAVE_CUDA
    cuda::CudaOptions co;
    co.graphs = !o.no_graphs;
    auto scales = cuda::parse_nf4_scales(o.nf4_scales);
    if (!scales) return report_error(scales.status());
    co.nf4_scales = *scales;
    Result<std::unique_ptr<cuda::CudaModel>> g = Status::internal("unreachable");
    if (!o.config.empty()) {
      std::optional<cuda::W4Format> f;
      if (o.quant == "nf4") f = cuda::W4Format::kNf4;
      else if (o.quant == "int4") f = cuda::W4Format::kInt4;
      else if (o.quant == "mxfp4") f = cuda::W4Format::kMxfp4;
      else if (o.quant != "bf16") return report_error(Status::invalid("bench: --quant must be nf4, int4, mxfp4 or bf16"));
      g = cuda::CudaModel::create_random(config, f, o.seed, co);
    } else {
      auto m = Model::load(o.model);
      if (!m) return report_error(m.status());
      g = cuda::CudaModel::create(**m, co);
    }
    if (!g) return report_error(g.status());
    auto bw = (*g)->measure_copy_bandwidth();
    if (!bw) return report_error(bw.status());
    copy_bw = *bw;
    step_bytes = (*g)->weight_stream_bytes();
    format = (*g)->weight_format();
    nf4_absmax = (*g)->nf4_absmax();
    exec = std::move(*g);
#else
    return report_error(Status::unsupported("bench: this build has no CUDA backend"));
#endif
  } else if (o.device == "cpu") {
    auto m = o.config.empty() ? Model::load(o.model) : Model::create(config, std::make_unique<RandomSource>(o.seed));
    if (!m) return report_error(m.status());
    exec = std::move(*m);
  } else {
    return report_error(Status::invalid("bench: --device must be cpu or cuda, got '{}'", o.device));
  }
  const ModelConfig& c = exec->config();
  if (o.prompt + o.gen > c.max_position_embeddings)
    return report_error(Status::invalid("bench: {} + {} tokens exceed the context length {}", o.prompt, o.gen,
                                        c.max_position_embeddings));

  // Warm-up (kernel loading, cuBLAS heuristics, decode graphs), then the measured run.
  if (o.device == "cuda") {
    if (auto w = run_once(*exec, o.batch, o.prompt, std::min(o.gen, 4), o.seed + 1, o.sampling); !w)
      return report_error(w.status());
  }
  auto t = run_once(*exec, o.batch, o.prompt, o.gen, o.seed, o.sampling);
  if (!t) return report_error(t.status());
  const double prefill_tps = o.batch * o.prompt / t->prefill_s;
  const double decode_tps = o.batch * o.gen / t->decode_s;

  // The decode floor: every weight byte once per step, plus the KV cache read at the mean
  // context, over the copy bandwidth measured in this run.
  const double mean_ctx = o.prompt + (o.gen - 1) / 2.0;
  const double kv_bytes = 2.0 * c.n_layers * c.kv_dim() * 2 /* bf16 */ * mean_ctx * o.batch;
  const double floor_step_s = copy_bw > 0 ? (step_bytes + kv_bytes) / copy_bw : 0;
  const double floor_tps = floor_step_s > 0 ? o.batch / floor_step_s : 0;

  nlohmann::json rec = {{"format", format}, {"batch", o.batch}, {"prompt_tokens", o.prompt}, {"gen_tokens", o.gen},
                        {"tok_per_s", decode_tps}, {"ms_per_step", t->decode_s * 1e3 / o.gen},
                        {"prefill_tok_per_s", prefill_tps}, {"ttft_ms", t->prefill_s * 1e3}};
  if (!nf4_absmax.empty()) rec["nf4_scales"] = nf4_absmax;
  const std::string decode_how =
      ops::sampling_uses_draw(o.sampling)
          ? fmt::format("sampled: temperature {}, top-k {}, top-p {}, min-p {}, repeat penalty {}", o.sampling.temperature,
                        o.sampling.top_k, o.sampling.top_p, o.sampling.min_p, o.sampling.repeat_penalty)
          : "greedy";
  rec["decode"] = decode_how;
  if (floor_tps > 0) {
    rec["floor_tok_per_s"] = floor_tps;
    rec["frac_of_floor"] = decode_tps / floor_tps;
    rec["weight_bytes_per_step"] = step_bytes;
  }
  if (!o.anchor.empty()) {
    std::string variant;
    if (const double a = anchor_tok_per_s(o.anchor, o.batch, &variant); a > 0) {
      rec["anchor"] = variant;
      rec["anchor_tok_per_s"] = a;
      rec["anchor_ratio"] = decode_tps / a;
    }
  }
  const int threads = omp_get_max_threads();
  if (!o.out.empty()) {
    nlohmann::json doc;
    if (std::ifstream in(o.out); in) doc = nlohmann::json::parse(in, nullptr, false);
    if (!doc.is_object()) doc = nlohmann::json::object();
    doc["device"] = exec->device_name();
    doc["date"] = today();
    if (copy_bw > 0) doc["copy_GBps"] = copy_bw / 1e9;
    rec["model"] = what;
    doc["e2e"].push_back(rec);
    std::ofstream(o.out) << doc.dump(2) << "\n";
  }
  if (o.json) {
    rec["device"] = exec->device_name();
    rec["model"] = what;
    rec["threads"] = threads;
    std::printf("%s\n", rec.dump(2).c_str());
    return 0;
  }
  std::printf("model    %s (%s)\n", what.c_str(), c.architecture.c_str());
  std::printf("device   %s%s\n", exec->device_name().c_str(),
              o.device == "cpu" ? fmt::format(", {} threads", threads).c_str() : "");
  if (rec.contains("nf4_scales"))
    std::printf("weights  NF4 absmax %s\n", nf4_absmax.c_str());
  std::printf("%-8s %8s %8s %12s %14s\n", "phase", "batch", "tokens", "tok/s", "ms");
  std::printf("%-8s %8d %8d %12.1f %14.1f  (time to first token)\n", "prefill", o.batch, o.prompt, prefill_tps,
              t->prefill_s * 1e3);
  std::printf("%-8s %8d %8d %12.1f %14.2f  (per step, %s)\n", "decode", o.batch, o.gen, decode_tps,
              t->decode_s * 1e3 / o.gen, decode_how.c_str());
  if (floor_tps > 0)
    std::printf("floor    %.1f tok/s (%.2f GB per step at %.0f GB/s): %.2f of it\n", floor_tps,
                (step_bytes + kv_bytes) / 1e9, copy_bw / 1e9, decode_tps / floor_tps);
  return 0;
}

const bool registered = register_command({
    "bench", "Measure prefill and decode tokens/s",
    [](CLI::App& sub) {
      auto o = std::make_shared<Options>();
      sub.add_option("-m,--model", o->model, "model folder or .gguf");
      sub.add_option("--config", o->config, "a config.json to build the model from (with --random-weights)");
      sub.add_flag("--random-weights", o->random_weights, "random weights of the config's shape");
      sub.add_option("--device", o->device, "cpu or cuda")->capture_default_str();
      sub.add_option("--quant", o->quant, "random GPU weights: nf4, int4, mxfp4 or bf16")->capture_default_str();
      sub.add_option("--prompt", o->prompt, "prompt tokens per sequence")->capture_default_str();
      sub.add_option("--gen", o->gen, "generated tokens per sequence")->capture_default_str();
      sub.add_option("--batch", o->batch, "sequences decoded together")->capture_default_str();
      sub.add_option("--seed", o->seed, "seed for random weights and prompts");
      sub.add_option("--temperature", o->sampling.temperature, "decode by sampling at this temperature (0: greedy)")
          ->capture_default_str();
      sub.add_option("--top-k", o->sampling.top_k, "with --temperature: keep the k most likely tokens (0: off)");
      sub.add_option("--top-p", o->sampling.top_p, "with --temperature: nucleus mass (1: off)");
      sub.add_option("--min-p", o->sampling.min_p, "with --temperature: min-p (0: off)");
      sub.add_option("--repeat-penalty", o->sampling.repeat_penalty, "with --temperature: repetition penalty (1: off)");
      sub.add_flag("--kernels", o->kernels,
                   "GPU: the 4-bit GEMV benchmark (15 layer shapes x NF4/INT4/MXFP4 x M 1/8/32) instead of a model");
      sub.add_flag("--quick", o->quick, "with --kernels: fewer configurations and repetitions");
      sub.add_flag("--no-graphs", o->no_graphs, "GPU: launch every kernel of a decode step instead of a CUDA graph");
      sub.add_option("--nf4-scales", o->nf4_scales,
                     "GPU: NF4 absmax as fp16 (fp16: the fastest, each within 2^-11), as fp32 (fp32: exactly the "
                     "file's), double-quantized NF4 kept as 1-byte codes (dq), or fp16 where it fits and dq "
                     "otherwise (auto)")
          ->capture_default_str();
      sub.add_option("--out", o->out, "append an e2e record to this results JSON");
      sub.add_option("--anchor", o->anchor,
                     "anchor figures to compare with: JSON lines of bench/e2e_anchor.py, or with --kernels the JSON of "
                     "bench/gemv_anchors.py");
      sub.add_option("--llamacpp-anchor", o->llamacpp_anchor,
                     "with --kernels: the JSON of bench/llamacpp_mulmat (tools/run_llamacpp_anchor.sh); INT4 and "
                     "MXFP4 are then compared with llama.cpp's Q4_0 and MXFP4 MUL_MAT");
      sub.add_flag("--json", o->json, "print JSON");
      return [o] { return run(*o); };
    }});

}  // namespace
}  // namespace nibble::app

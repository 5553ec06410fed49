// nibble run: generate text, streaming, from a prompt or as a multi-turn chat.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "command.h"
#include "runtime/model_bundle.h"
#include "runtime/session.h"
#ifdef NIBBLE_HAVE_CUDA
#include "model/cuda/cuda_model.h"
#endif

namespace nibble::app {
namespace {

struct Options {
  std::string model;
  std::string prompt;
  std::string system;
  bool chat = false;
  int n = 256;
  int ctx = 0;
  float temp = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  int64_t seed = -1;
  std::vector<std::string> stop;
  bool json = false;
  std::string numerics = "exact";
  std::string device = "cpu";
  std::string nf4_scales = "auto";
};

// Streams generated text to stdout, holding back any tail that could still become a stop
// string, and cutting the text where a stop string appears.
class StopStreamer {
 public:
  StopStreamer(const Tokenizer& tok, const std::vector<std::string>& stops, bool echo)
      : decode_(tok, /*skip_special_tokens=*/true), stops_(stops), echo_(echo) {}

  // False once a stop string has appeared.
  bool push(int32_t id) {
    pending_ += decode_.step(id);
    for (const auto& s : stops_) {
      if (s.empty()) continue;
      if (auto at = pending_.find(s); at != std::string::npos) {
        emit(pending_.substr(0, at));
        pending_.clear();
        return false;
      }
    }
    // Keep back the longest suffix that is a prefix of some stop string.
    size_t hold = 0;
    for (const auto& s : stops_)
      for (size_t k = std::min(s.size() - 1, pending_.size()); k > hold; --k)
        if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
    emit(pending_.substr(0, pending_.size() - hold));
    pending_.erase(0, pending_.size() - hold);
    return true;
  }
  void finish() {
    emit(pending_);
    pending_.clear();
  }
  const std::string& text() const { return text_; }

 private:
  void emit(const std::string& s) {
    if (s.empty()) return;
    text_ += s;
    if (echo_) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
    }
  }
  DecodeStream decode_;
  const std::vector<std::string>& stops_;
  bool echo_;
  std::string pending_, text_;
};

Result<std::vector<int32_t>> chat_prompt(const ModelBundle& b, const nlohmann::ordered_json& messages) {
  if (!b.chat_templates) return Status::not_found("{}: --chat needs a chat template and the model has none", b.path);
  ChatRequest req;
  req.messages = messages;
  req.add_generation_prompt = true;
  NB_ASSIGN_OR_RETURN(std::string text, apply_chat_template(*b.chat_templates, req));
  // As transformers' apply_chat_template(tokenize=True): the template writes its own specials.
  return b.tokenizer.encode(text, /*add_special_tokens=*/false);
}

struct TurnResult {
  GenerateResult gen;
  std::string text;
};

Result<TurnResult> run_turn(const ModelBundle& b, Session& session, const std::vector<int32_t>& prompt,
                            const Options& o, bool echo) {
  GenerateOptions g;
  g.max_new_tokens = o.n;
  g.sampling = {o.temp, o.top_k, o.top_p, o.min_p, o.repeat_penalty, o.repeat_last_n,
                o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}()};
  StopStreamer streamer(b.tokenizer, o.stop, echo);
  auto r = session.generate(prompt, g, [&](int32_t id) { return streamer.push(id); });
  if (!r) {
    // What was generated before the error stays on the screen, and the error starts a line.
    streamer.finish();
    if (echo && !streamer.text().empty()) std::printf("\n");
    std::fflush(stdout);
    return r.status();
  }
  streamer.finish();
  return TurnResult{std::move(*r), streamer.text()};
}

void print_json(const TurnResult& t) {
  const auto& g = t.gen;
  nlohmann::json j = {{"text", t.text},
                      {"tokens", g.tokens},
                      {"prompt_tokens", g.prompt_tokens},
                      {"generated_tokens", g.tokens.size()},
                      {"prefill_tok_per_s", g.prefill_seconds > 0 ? g.prefilled_tokens / g.prefill_seconds : 0.0},
                      {"decode_tok_per_s", g.decode_seconds > 0 ? g.tokens.size() / g.decode_seconds : 0.0},
                      {"stop_reason", std::string(stop_reason_name(g.stop))}};
  std::printf("\n%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

int run(Options o) {
  if (o.model.empty()) {
    o.model = default_model_path();
    if (access(o.model.c_str(), R_OK) != 0)
      return report_error(Status::not_found(
          "no model given (-m) and the bundled model is not at {}: run `make demo` or tools/fetch_model.sh", o.model));
  }
  LoadOptions load;
  load.numerics = o.numerics == "llamacpp" ? Numerics::kLlamaCpp : Numerics::kExact;
  auto bundle = load_model_bundle(o.model, load);
  if (!bundle) return report_error(bundle.status());
  // The executor: the CPU model itself, or the GPU backend built from it.
  const Executor* exec = bundle->model.get();
#ifdef NIBBLE_HAVE_CUDA
  std::unique_ptr<cuda::CudaModel> gpu;
  if (o.device == "cuda") {
    if (o.numerics != "exact") return report_error(Status::invalid("--numerics llamacpp is a CPU mode"));
    cuda::CudaOptions co;
    auto scales = cuda::parse_nf4_scales(o.nf4_scales);
    if (!scales) return report_error(scales.status());
    co.nf4_scales = *scales;
    auto g = cuda::CudaModel::create(*bundle->model, co);
    if (!g) return report_error(g.status());
    gpu = std::move(*g);
    if (gpu->nf4_double_quant_kept())
      std::fprintf(stderr, "note: NF4 absmax kept double-quantized on the GPU (fp16 absmax, which decode faster, would not fit)\n");
    else if (o.nf4_scales == "auto" && gpu->nf4_absmax().find("fp32") != std::string::npos)
      std::fprintf(stderr, "note: some NF4 weights keep fp32 absmax on the GPU (an absmax beyond fp16's range)\n");
    exec = gpu.get();
  }
#else
  if (o.device == "cuda") return report_error(Status::unsupported("this build of nibble has no CUDA backend"));
#endif
  Session session(*exec, o.ctx);

  const bool interactive = o.prompt.empty() && isatty(STDIN_FILENO);
  if (!interactive) {
    if (o.prompt.empty()) o.prompt.assign(std::istreambuf_iterator<char>(std::cin), {});
    Result<std::vector<int32_t>> prompt = Status::internal("unset");
    if (o.chat) {
      nlohmann::ordered_json messages = nlohmann::ordered_json::array();
      if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
      messages.push_back({{"role", "user"}, {"content", o.prompt}});
      prompt = chat_prompt(*bundle, messages);
    } else {
      prompt = bundle->tokenizer.encode(o.prompt, /*add_special_tokens=*/true);
    }
    if (!prompt) return report_error(prompt.status());
    auto turn = run_turn(*bundle, session, *prompt, o, /*echo=*/true);
    if (!turn) return report_error(turn.status());
    if (o.json) print_json(*turn);
    else std::printf("\n");
    return 0;
  }

  // Multi-turn chat on a terminal: the conversation is re-rendered each turn and the session
  // reuses the cached prefix, so only the new turn is prefilled.
  if (!bundle->chat_templates) return report_error(Status::not_found("{}: chat needs a chat template", o.model));
  std::fprintf(stderr, "nibble: chatting with %s (empty line or Ctrl-D to quit)\n", o.model.c_str());
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  std::string line;
  while (true) {
    std::fprintf(stderr, "\n> ");
    if (!std::getline(std::cin, line) || line.empty()) break;
    messages.push_back({{"role", "user"}, {"content", line}});
    auto prompt = chat_prompt(*bundle, messages);
    if (!prompt) return report_error(prompt.status());
    auto turn = run_turn(*bundle, session, *prompt, o, /*echo=*/true);
    if (!turn) {
      const int rc = report_error(turn.status());
#ifdef NIBBLE_HAVE_CUDA
      if (gpu && !gpu->lost().is_ok()) return rc;  // the GPU cannot run another turn
#endif
      messages.erase(messages.end() - 1);  // keep the conversation usable
      continue;
    }
    std::printf("\n");
    messages.push_back({{"role", "assistant"}, {"content", turn->text}});
  }
  return 0;
}

const bool registered = register_command({
    "run", "Generate text from a prompt, or chat (the bundled model when -m is not given)",
    [](CLI::App& sub) {
      auto o = std::make_shared<Options>();
      sub.add_option("-m,--model", o->model, "model folder or .gguf file (default: the bundled model)");
      sub.add_option("-p,--prompt", o->prompt, "prompt (default: stdin; an interactive chat on a terminal)");
      sub.add_flag("--chat", o->chat, "apply the model's chat template to the prompt");
      sub.add_option("--system", o->system, "system message for --chat");
      sub.add_option("-n,--n-predict", o->n, "tokens to generate at most")->capture_default_str();
      sub.add_option("--ctx", o->ctx, "context size in tokens (default: the model's)");
      sub.add_option("--temp", o->temp, "temperature; 0 = greedy")->capture_default_str();
      sub.add_option("--top-k", o->top_k, "keep the k most likely tokens; 0 = off")->capture_default_str();
      sub.add_option("--top-p", o->top_p, "keep the smallest set with this much probability")->capture_default_str();
      sub.add_option("--min-p", o->min_p, "drop tokens below this fraction of the top one")->capture_default_str();
      sub.add_option("--repeat-penalty", o->repeat_penalty, "penalty for tokens already seen; 1 = off")->capture_default_str();
      sub.add_option("--repeat-last-n", o->repeat_last_n, "tokens the penalty looks back over; -1 = all")->capture_default_str();
      sub.add_option("--seed", o->seed, "random seed (default: random)");
      sub.add_option("--stop", o->stop, "stop when this text appears (repeatable)");
      sub.add_flag("--json", o->json, "end with one JSON record: tokens, speeds, stop reason");
      sub.add_option("--device", o->device, "cpu or cuda (the GPU backend)")
          ->check(CLI::IsMember({"cpu", "cuda"}))
          ->capture_default_str();
      sub.add_option("--nf4-scales", o->nf4_scales,
                     "GPU: NF4 absmax as fp16 (fp16: the fastest, each within 2^-11), as fp32 (fp32: exactly the "
                     "file's), double-quantized NF4 kept as 1-byte codes (dq), or fp16 where it fits and dq "
                     "otherwise (auto)")
          ->check(CLI::IsMember({"auto", "fp16", "fp32", "dq"}))
          ->capture_default_str();
      sub.add_option("--numerics", o->numerics,
                     "exact: fp32 on dequantized weights; llamacpp: llama.cpp's CPU roundings (Q8 activations, "
                     "F16 KV cache), to follow its greedy tokens on GGUF files")
          ->check(CLI::IsMember({"exact", "llamacpp"}))
          ->capture_default_str();
      return [o] { return run(*o); };
    }});

}  // namespace
}  // namespace nibble::app

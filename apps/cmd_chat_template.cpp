// `nibble chat-template -m PATH [--no-generation-prompt] [--template NAME]`: a conversation on
// stdin -> the rendered prompt on stdout, as transformers'
// tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, ...).
// stdin holds either a JSON list of messages, or an object
//   {"messages": [...], "tools": [...], "documents": [...], "add_generation_prompt": bool, ...}
// whose other keys are passed to the template as extra variables (enable_thinking, ...).
// PATH is a model folder, a folder holding tokenizer_config.json / chat_template.jinja, or
// tokenizer_config.json itself.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "command.h"
#include "runtime/model_bundle.h"
#include "template/chat_template_loader.h"

namespace nibble::app {
namespace {

struct ChatTemplateArgs {
  std::string model;
  std::string name;
  bool no_generation_prompt = false;
};

std::string read_all_stdin() {
  std::string s;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) s.append(buf, n);
  return s;
}

Result<ChatRequest> parse_request(const std::string& text, bool add_generation_prompt) {
  auto j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::invalid("chat-template: stdin is not valid JSON");
  ChatRequest r;
  r.add_generation_prompt = add_generation_prompt;
  if (j.is_array()) {
    r.messages = std::move(j);
    return r;
  }
  if (!j.is_object() || !j.contains("messages") || !j["messages"].is_array())
    return Status::invalid("chat-template: expected a JSON list of messages or an object with \"messages\"");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "messages") r.messages = it.value();
    else if (k == "tools") r.tools = it.value();
    else if (k == "documents") r.documents = it.value();
    else if (k == "add_generation_prompt" && it.value().is_boolean()) r.add_generation_prompt = it.value().get<bool>() && add_generation_prompt;
    else r.kwargs[k] = it.value();
  }
  return r;
}

int run_chat_template(const ChatTemplateArgs& a) {
  auto set = load_chat_templates_any(a.model);  // a folder, tokenizer_config.json or a .gguf
  if (!set) return report_error(set.status());
  auto req = parse_request(read_all_stdin(), !a.no_generation_prompt);
  if (!req) return report_error(req.status());
  auto source = set->select(!req->tools.is_null(), a.name);
  if (!source) return report_error(source.status());
  auto tpl = ChatTemplate::parse(source.value());
  if (!tpl) return report_error(tpl.status());
  auto out = tpl->render(build_chat_context(req.value(), set->special_tokens));
  if (!out) return report_error(out.status());
  std::fwrite(out->data(), 1, out->size(), stdout);
  return 0;
}

const bool kChatTemplateRegistered = register_command(
    {"chat-template", "render a conversation (JSON on stdin) with the model's chat template",
     [](CLI::App& sub) -> std::function<int()> {
       auto a = std::make_shared<ChatTemplateArgs>();
       sub.add_option("-m,--model", a->model, "model folder, or tokenizer_config.json")->required();
       sub.add_flag("--no-generation-prompt", a->no_generation_prompt, "do not open an assistant turn at the end");
       sub.add_option("--template", a->name, "a named template (e.g. tool_use) instead of the automatic choice");
       return [a] { return run_chat_template(*a); };
     }});

}  // namespace
}  // namespace nibble::app

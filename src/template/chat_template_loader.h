// Finding a model's chat template(s) and building the variables transformers passes to them.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "template/chat_template.h"

namespace nibble {

struct ChatTemplateSet {
  // Named templates in file order; a single template is stored as "default".
  std::vector<std::pair<std::string, std::string>> templates;
  // The named special tokens transformers exposes as variables ({"bos_token": "<s>", ...}):
  // bos/eos/unk/sep/pad/cls/mask plus the keys of a dict-valued extra_special_tokens, when not null.
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();

  // transformers' get_chat_template(): `name` if given; else "tool_use" when tools are given
  // and present; else "default".
  Result<std::string> select(bool has_tools, const std::string& name = {}) const;
};

// From a parsed tokenizer_config.json. `chat_template` may be a string or a list of
// {"name", "template"}; `template_override` (chat_template.jinja, GGUF's tokenizer.chat_template)
// replaces the default when not empty.
Result<ChatTemplateSet> chat_templates_from_config(const nlohmann::ordered_json& tokenizer_config,
                                                   const std::string& template_override = {});

// `path` is a model folder, a folder holding tokenizer_config.json, or that file itself.
// chat_template.jinja and additional_chat_templates/*.jinja beside it win over the config's
// own chat_template, as in transformers 5.
Result<ChatTemplateSet> load_chat_templates(const std::filesystem::path& path);

struct ChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools;      // null when there are none
  nlohmann::ordered_json documents;  // null when there are none
  bool add_generation_prompt = false;  // transformers' default
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();  // enable_thinking, ...
};

// The variables apply_chat_template renders with: special tokens, then kwargs (which win), then
// messages (null-valued keys dropped, reasoning fields aliased), tools, documents,
// add_generation_prompt.
nlohmann::ordered_json build_chat_context(const ChatRequest& request, const nlohmann::ordered_json& special_tokens);

// select + parse + render in one call.
Result<std::string> apply_chat_template(const ChatTemplateSet& set, const ChatRequest& request,
                                        const ChatRenderOptions& options = {});

}  // namespace nibble

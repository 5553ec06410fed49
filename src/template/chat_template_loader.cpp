#include "template/chat_template_loader.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace nibble {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

Result<std::string> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return Status::io_error("{}: cannot open", p.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Special tokens are strings, or AddedToken dicts {"content": ..., "lstrip": ...}.
std::optional<std::string> token_text(const ojson& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Result<std::string> ChatTemplateSet::select(bool has_tools, const std::string& name) const {
  auto find = [&](const std::string& n) -> const std::string* {
    for (auto& [k, v] : templates)
      if (k == n) return &v;
    return nullptr;
  };
  if (!name.empty()) {
    if (auto* t = find(name)) return *t;
    return Status::not_found("chat template '{}' not found", name);
  }
  if (has_tools)
    if (auto* t = find("tool_use")) return *t;
  if (auto* t = find("default")) return *t;
  if (templates.empty()) return Status::not_found("this tokenizer has no chat template");
  return Status::not_found("this tokenizer has several chat templates and none named 'default'");
}

Result<ChatTemplateSet> chat_templates_from_config(const ojson& config, const std::string& template_override) {
  if (!config.is_object()) return Status::invalid("tokenizer_config.json: expected a JSON object");
  ChatTemplateSet set;
  if (config.contains("chat_template")) {
    const ojson& ct = config["chat_template"];
    if (ct.is_string()) {
      set.templates.emplace_back("default", ct.get<std::string>());
    } else if (ct.is_array()) {
      for (auto& e : ct) {
        if (!e.is_object() || !e.contains("name") || !e.contains("template") || !e["name"].is_string() ||
            !e["template"].is_string())
          return Status::invalid("tokenizer_config.json: chat_template list entries need string 'name' and 'template'");
        set.templates.emplace_back(e["name"].get<std::string>(), e["template"].get<std::string>());
      }
    } else if (!ct.is_null()) {
      return Status::invalid("tokenizer_config.json: chat_template must be a string or a list");
    }
  }
  if (!template_override.empty()) {
    auto it = std::find_if(set.templates.begin(), set.templates.end(), [](auto& kv) { return kv.first == "default"; });
    if (it != set.templates.end()) it->second = template_override;
    else set.templates.emplace(set.templates.begin(), "default", template_override);
  }
  // transformers' SPECIAL_TOKENS_ATTRIBUTES, then model-specific names from extra_special_tokens.
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
    if (config.contains(key))
      if (auto t = token_text(config[key])) set.special_tokens[key] = *t;
  if (config.contains("extra_special_tokens") && config["extra_special_tokens"].is_object())
    for (auto it = config["extra_special_tokens"].begin(); it != config["extra_special_tokens"].end(); ++it)
      if (auto t = token_text(it.value())) set.special_tokens[it.key()] = *t;
  return set;
}

Result<ChatTemplateSet> load_chat_templates(const fs::path& path) {
  std::error_code ec;
  fs::path dir = fs::is_directory(path, ec) ? path : path.parent_path();
  fs::path config_path = fs::is_directory(path, ec) ? path / "tokenizer_config.json" : path;
  ojson config = ojson::object();
  if (fs::exists(config_path, ec)) {
    NB_ASSIGN_OR_RETURN(std::string text, read_file(config_path));
    config = ojson::parse(text, nullptr, false);
    if (config.is_discarded()) return Status::invalid("{}: not valid JSON", config_path.string());
  }
  std::string override_text;
  if (fs::exists(dir / "chat_template.jinja", ec)) {
    NB_ASSIGN_OR_RETURN(override_text, read_file(dir / "chat_template.jinja"));
  } else if (!config.contains("chat_template") && fs::exists(dir / "chat_template.json", ec)) {
    // Older processors saved {"chat_template": "..."} beside the tokenizer.
    NB_ASSIGN_OR_RETURN(std::string text, read_file(dir / "chat_template.json"));
    ojson j = ojson::parse(text, nullptr, false);
    if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
      override_text = j["chat_template"].get<std::string>();
  }
  NB_ASSIGN_OR_RETURN(ChatTemplateSet set, chat_templates_from_config(config, override_text));
  fs::path extra = dir / "additional_chat_templates";
  if (fs::is_directory(extra, ec)) {
    std::vector<fs::path> files;
    for (auto& e : fs::directory_iterator(extra, ec))
      if (e.path().extension() == ".jinja") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      NB_ASSIGN_OR_RETURN(std::string text, read_file(f));
      std::string name = f.stem().string();
      auto it = std::find_if(set.templates.begin(), set.templates.end(), [&](auto& kv) { return kv.first == name; });
      if (it != set.templates.end()) it->second = text;
      else set.templates.emplace_back(name, text);
    }
  }
  if (set.templates.empty() && !fs::exists(config_path, ec))
    return Status::not_found("{}: no tokenizer_config.json or chat_template.jinja", path.string());
  return set;
}

ojson build_chat_context(const ChatRequest& request, const ojson& special_tokens) {
  ojson ctx = ojson::object();
  if (special_tokens.is_object())
    for (auto it = special_tokens.begin(); it != special_tokens.end(); ++it) ctx[it.key()] = it.value();
  if (request.kwargs.is_object())
    for (auto it = request.kwargs.begin(); it != request.kwargs.end(); ++it) ctx[it.key()] = it.value();
  ojson messages = ojson::array();
  for (auto& m : request.messages) {
    if (!m.is_object()) {
      messages.push_back(m);
      continue;
    }
    // apply_chat_template drops null-valued keys (OpenAI clients send content=None).
    ojson msg = ojson::object();
    for (auto it = m.begin(); it != m.end(); ++it)
      if (!it.value().is_null()) msg[it.key()] = it.value();
    // ...and fills `thinking` and `reasoning_content` from whichever reasoning field is set:
    // {"thinking": r, **message, "reasoning_content": r}.
    const ojson* reasoning = nullptr;
    for (const char* k : {"reasoning_content", "thinking", "reasoning"})
      if (msg.contains(k)) {
        reasoning = &msg[k];
        break;
      }
    if (reasoning) {
      ojson r = *reasoning;
      ojson aliased = ojson::object();
      aliased["thinking"] = r;
      for (auto it = msg.begin(); it != msg.end(); ++it) aliased[it.key()] = it.value();
      aliased["reasoning_content"] = r;
      msg = std::move(aliased);
    }
    messages.push_back(std::move(msg));
  }
  ctx["messages"] = std::move(messages);
  ctx["tools"] = request.tools;
  ctx["documents"] = request.documents;
  ctx["add_generation_prompt"] = request.add_generation_prompt;
  return ctx;
}

Result<std::string> apply_chat_template(const ChatTemplateSet& set, const ChatRequest& request,
                                        const ChatRenderOptions& options) {
  NB_ASSIGN_OR_RETURN(std::string source, set.select(!request.tools.is_null()));
  NB_ASSIGN_OR_RETURN(ChatTemplate tpl, ChatTemplate::parse(source));
  return tpl.render(build_chat_context(request, set.special_tokens), options);
}

}  // namespace nibble

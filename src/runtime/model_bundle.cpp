#include "runtime/model_bundle.h"

#include <cstdlib>
#include <filesystem>

#include "io/gguf.h"
#include "tokenizer/gguf_tokenizer.h"

namespace nibble {

namespace fs = std::filesystem;

namespace {
bool is_gguf(const std::string& path) { return path.ends_with(".gguf") && !fs::is_directory(path); }

// GGUF keeps the template in tokenizer.chat_template and the special tokens by id.
Result<ChatTemplateSet> gguf_chat_templates(const GgufFile& f, const Tokenizer& tok) {
  if (!f.has("tokenizer.chat_template"))
    return Status::not_found("{}: no tokenizer.chat_template", f.name());
  NB_ASSIGN_OR_RETURN(std::string_view tmpl, f.get_string("tokenizer.chat_template"));
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  for (const char* name : {"bos", "eos", "unknown", "padding"}) {
    const std::string key = std::string("tokenizer.ggml.") + name + "_token_id";
    if (!f.has(key)) continue;
    NB_ASSIGN_OR_RETURN(int64_t id, f.get_int(key));
    const std::string var = std::string(name) == "unknown" ? "unk_token"
                            : std::string(name) == "padding" ? "pad_token"
                                                            : std::string(name) + "_token";
    config[var] = tok.id_to_token(static_cast<int32_t>(id));
  }
  return chat_templates_from_config(config, std::string(tmpl));
}
}  // namespace

std::string default_model_path() {
  if (const char* m = std::getenv("NIBBLE_MODEL"); m && *m) return m;
  std::string cache;
  if (const char* c = std::getenv("NIBBLE_MODEL_CACHE"); c && *c) cache = c;
  else cache = std::string(std::getenv("HOME") ? std::getenv("HOME") : ".") + "/.cache/nibble/models";
  return cache + "/SmolLM2-135M-Instruct.Q4_1.gguf";
}

Result<Tokenizer> load_tokenizer(const std::string& path) {
  if (is_gguf(path)) {
    NB_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
    return tokenizer_from_gguf(f);
  }
  return Tokenizer::from_json_file(path);
}

Result<ChatTemplateSet> load_chat_templates_any(const std::string& path) {
  if (is_gguf(path)) {
    NB_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
    NB_ASSIGN_OR_RETURN(Tokenizer tok, tokenizer_from_gguf(f));
    return gguf_chat_templates(f, tok);
  }
  return load_chat_templates(path);
}

Result<ModelBundle> load_model_bundle(const std::string& path, const LoadOptions& options) {
  if (!fs::exists(path)) return Status::not_found("{}: no such model file or folder", path);
  NB_ASSIGN_OR_RETURN(auto model, Model::load(path, options));
  Result<ChatTemplateSet> templates = Status::not_found("no chat template");
  std::optional<Tokenizer> tok;
  if (is_gguf(path)) {
    // One read of the metadata for both: building a large vocabulary's tokenizer takes seconds.
    NB_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
    NB_ASSIGN_OR_RETURN(tok, tokenizer_from_gguf(f));
    templates = gguf_chat_templates(f, *tok);
  } else {
    NB_ASSIGN_OR_RETURN(tok, Tokenizer::from_json_file(path));
    templates = load_chat_templates(path);
  }
  ModelBundle b{path, std::move(model), std::move(*tok), std::nullopt};
  if (templates.is_ok()) b.chat_templates = std::move(templates.value());
  else if (templates.status().code() != StatusCode::kNotFound) return templates.status();
  return b;
}

}  // namespace nibble

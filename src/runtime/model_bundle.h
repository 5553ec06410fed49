// Everything `nibble run` and the server need from a model path: the model, its tokenizer and
// its chat templates, from a HuggingFace folder or a GGUF file.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "model/model.h"
#include "template/chat_template_loader.h"
#include "tokenizer/tokenizer.h"

namespace nibble {

struct ModelBundle {
  std::string path;
  std::unique_ptr<Model> model;
  Tokenizer tokenizer;
  std::optional<ChatTemplateSet> chat_templates;  // absent when the model ships none
};

Result<ModelBundle> load_model_bundle(const std::string& path, const LoadOptions& options = {});

// The tokenizer (and chat templates) alone, for `nibble tokenize` and friends.
Result<Tokenizer> load_tokenizer(const std::string& path);
Result<ChatTemplateSet> load_chat_templates_any(const std::string& path);

// Where `make demo` puts the bundled model: $NIBBLE_MODEL, else
// $NIBBLE_MODEL_CACHE (default ~/.cache/nibble/models)/SmolLM2-135M-Instruct.Q4_1.gguf.
std::string default_model_path();

}  // namespace nibble

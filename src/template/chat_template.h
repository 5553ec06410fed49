// ChatTemplate: a parsed Jinja2 chat template that renders prompts byte-identical to
// transformers' apply_chat_template(tokenize=False). See docs/chat_templates.md.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace nibble {

struct ChatRenderOptions {
  // strftime_now() reads this clock when set (tests), the system clock otherwise.
  std::optional<std::time_t> now;
  // Bounds for untrusted templates: evaluation steps, output bytes.
  uint64_t max_steps = 50'000'000;
  size_t max_output = size_t(64) << 20;
};

class ChatTemplate {
 public:
  // Errors name the line: "chat template line 12: unsupported filter 'wordwrap'" (kUnsupported for
  // constructs we do not implement, kInvalidArgument for malformed templates).
  static Result<ChatTemplate> parse(std::string_view source);

  // `context` is a JSON object whose keys become the template's variables. Use ordered_json so
  // that dicts keep their key order (tojson prints them in that order, as Python does); the
  // nlohmann::json overload sorts keys.
  Result<std::string> render(const nlohmann::ordered_json& context, const ChatRenderOptions& options = {}) const;
  Result<std::string> render(const nlohmann::json& context, const ChatRenderOptions& options = {}) const;

  const std::string& source() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace nibble

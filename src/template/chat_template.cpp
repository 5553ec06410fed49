#include "template/chat_template.h"

#include "template/interpreter.h"
#include "template/parser.h"

namespace nibble {

struct ChatTemplate::Impl {
  std::string source;
  tpl::Body program;
};

static Status to_status(const tpl::TemplateError& e) {
  std::string msg = "chat template line " + std::to_string(e.line) + ": " + e.message;
  return e.unsupported ? Status(StatusCode::kUnsupported, msg) : Status(StatusCode::kInvalidArgument, msg);
}

Result<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  auto impl = std::make_shared<Impl>();
  impl->source = std::string(source);
  try {
    impl->program = tpl::parse_template(impl->source);
  } catch (const tpl::TemplateError& e) {
    return to_status(e);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("chat template: out of memory while parsing");
  }
  ChatTemplate t;
  t.impl_ = std::move(impl);
  return t;
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& context, const ChatRenderOptions& options) const {
  if (!impl_) return Status::invalid("chat template: render() on an empty template");
  if (!context.is_object()) return Status::invalid("chat template: the context must be a JSON object");
  try {
    tpl::Dict vars;
    for (auto it = context.begin(); it != context.end(); ++it) vars.set(it.key(), tpl::Value::from_json(it.value()));
    tpl::Limits limits;
    limits.max_steps = options.max_steps;
    limits.max_output = options.max_output;
    return tpl::render_program(impl_->program, vars, options.now, limits);
  } catch (const tpl::TemplateError& e) {
    return to_status(e);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("chat template: out of memory while rendering");
  }
}

Result<std::string> ChatTemplate::render(const nlohmann::json& context, const ChatRenderOptions& options) const {
  return render(nlohmann::ordered_json::parse(context.dump()), options);
}

const std::string& ChatTemplate::source() const {
  static const std::string kEmpty;
  return impl_ ? impl_->source : kEmpty;
}

}  // namespace nibble

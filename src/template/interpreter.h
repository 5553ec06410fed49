// Interpreter: walks the AST with Jinja2's scoping rules (a for-loop iteration, macro call or
// with-block is a new scope; if-blocks are not) and renders the output string.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "template/ast.h"

namespace nibble::tpl {

struct Limits {
  uint64_t max_steps = 50'000'000;          // evaluation steps before giving up
  size_t max_output = size_t(64) << 20;     // bytes of rendered text
  int max_depth = 400;                      // nested evaluation (expressions, blocks, macro calls)
};

// Throws TemplateError. `vars` are the template's variables (the context).
std::string render_program(const Body& program, const Dict& vars, std::optional<std::time_t> now,
                           const Limits& limits);

}  // namespace nibble::tpl

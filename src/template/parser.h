// Parser: tokens -> AST, following Jinja2's grammar and operator precedence. Unknown or
// unimplemented filters, tests and statements fail here, at parse time, with their line.
#pragma once

#include <string_view>

#include "template/ast.h"

namespace nibble::tpl {

// Throws TemplateError.
Body parse_template(std::string_view source);

// Names the interpreter implements (filters.cpp); the parser checks against them.
bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

}  // namespace nibble::tpl

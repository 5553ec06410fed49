// Lexer: template source -> tokens, with Jinja2's whitespace control applied to the text
// between tags, configured the way transformers compiles chat templates
// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nibble::tpl {

enum class Tok : uint8_t {
  kData,        // literal text to print (already whitespace-processed)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,      // text holds the unescaped value
  kInt,         // text holds the digits (underscores removed)
  kFloat,
  kOp,          // + - * / // % ** ~ ( ) [ ] { } == != < > <= >= = . : | ,
  kEof,
};

struct Token {
  Tok type;
  std::string text;
  int line;
};

// Throws TemplateError (value.h) on malformed input: unterminated tags, strings or comments.
std::vector<Token> lex_template(std::string_view source);

}  // namespace nibble::tpl

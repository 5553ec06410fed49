#include "template/parser.h"

#include <cerrno>
#include <cstdlib>
#include <initializer_list>

#include "template/lexer.h"

namespace nibble::tpl {
namespace {

// Templates are shallow; this bounds the C++ stack for hostile input (parser and interpreter
// both recurse once per level).
constexpr int kMaxNesting = 128;

// Jinja statements that exist but that chat templates have no use for (no loader, no autoescape).
bool is_jinja_statement(std::string_view n) {
  for (const char* s : {"include", "import", "from", "extends", "block", "autoescape", "do", "trans", "pluralize"})
    if (n == s) return true;
  return false;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  Body parse_all() {
    Body body = parse_body({}, nullptr);
    return body;
  }

 private:
  const Token& cur() const { return t_[p_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  [[noreturn]] void error(const std::string& msg) const { throw TemplateError{cur().line, msg, false}; }
  [[noreturn]] void unsupported(const std::string& msg) const { throw TemplateError{cur().line, msg, true}; }

  bool is_op(const char* op) const { return cur().type == Tok::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Tok::kName && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    ++p_;
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    ++p_;
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) error(std::string("expected '") + op + "', got " + describe());
  }
  std::string expect_name() {
    if (cur().type != Tok::kName) error("expected a name, got " + describe());
    return t_[p_++].text;
  }
  void expect_block_end() {
    if (cur().type != Tok::kBlockEnd) error("expected end of statement '%}', got " + describe());
    ++p_;
  }
  std::string describe() const {
    switch (cur().type) {
      case Tok::kEof: return "end of template";
      case Tok::kBlockEnd: return "'%}'";
      case Tok::kVarEnd: return "'}}'";
      case Tok::kData: return "text";
      case Tok::kString: return "a string";
      case Tok::kInt:
      case Tok::kFloat: return "a number";
      default: return "'" + cur().text + "'";
    }
  }

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.error("template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  ExprPtr node(ExprKind k, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line;
    return e;
  }

  // Parses statements until a {% name %} with name in `ends`; leaves p_ on that name token and
  // stores it in *found. At top level (ends empty) runs to the end of the template.
  Body parse_body(std::initializer_list<const char*> ends, std::string* found);
  StmtPtr parse_statement();
  StmtPtr parse_for(int line);
  StmtPtr parse_if(int line);
  StmtPtr parse_set(int line);
  StmtPtr parse_macro(int line);
  StmtPtr parse_call_block(int line);
  StmtPtr parse_filter_block(int line);
  StmtPtr parse_with(int line);
  std::vector<Param> parse_params();
  std::vector<std::string> parse_targets();

  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra_end = {});
  ExprPtr parse_expression(bool with_condexpr = true);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter = true);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr e);
  ExprPtr parse_filter_expr(ExprPtr e);
  ExprPtr parse_filter(ExprPtr e);
  ExprPtr parse_test(ExprPtr e);
  ExprPtr parse_subscript(ExprPtr e);
  void parse_call_args(Expr& call);
  bool is_tuple_end(std::initializer_list<const char*> extra_end) const;

  std::vector<Token> t_;
  size_t p_ = 0;
  int depth_ = 0;
};

Body Parser::parse_body(std::initializer_list<const char*> ends, std::string* found) {
  DepthGuard g(*this);
  Body body;
  while (true) {
    const Token& tok = cur();
    if (tok.type == Tok::kEof) {
      if (ends.size() == 0) return body;
      std::string want;
      for (const char* e : ends) want += std::string(want.empty() ? "" : " or ") + "'" + e + "'";
      error("unexpected end of template, expected " + want);
    }
    if (tok.type == Tok::kData) {
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::kText;
      s->line = tok.line;
      s->text = tok.text;
      body.push_back(std::move(s));
      ++p_;
    } else if (tok.type == Tok::kVarBegin) {
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::kOutput;
      s->line = tok.line;
      ++p_;
      s->expr = parse_tuple(true);
      if (cur().type != Tok::kVarEnd) error("expected end of print statement '}}', got " + describe());
      ++p_;
      body.push_back(std::move(s));
    } else if (tok.type == Tok::kBlockBegin) {
      ++p_;
      if (cur().type == Tok::kName) {
        for (const char* e : ends)
          if (cur().text == e) {
            *found = e;
            return body;
          }
      }
      body.push_back(parse_statement());
    } else {
      error("unexpected " + describe());
    }
  }
}

StmtPtr Parser::parse_statement() {
  int line = cur().line;
  if (cur().type != Tok::kName) error("expected a statement name, got " + describe());
  std::string name = cur().text;
  ++p_;
  if (name == "if") return parse_if(line);
  if (name == "for") return parse_for(line);
  if (name == "set") return parse_set(line);
  if (name == "macro") return parse_macro(line);
  if (name == "call") return parse_call_block(line);
  if (name == "filter") return parse_filter_block(line);
  if (name == "with") return parse_with(line);
  if (name == "generation") {
    // transformers' assistant-mask extension: the body renders as is (in its own scope, since
    // Jinja renders it as a call block's caller).
    auto s = std::make_unique<Stmt>();
    s->kind = StmtKind::kWith;
    s->line = line;
    expect_block_end();
    std::string found;
    s->body = parse_body({"endgeneration"}, &found);
    ++p_;
    expect_block_end();
    return s;
  }
  if (name == "break" || name == "continue") {
    auto s = std::make_unique<Stmt>();
    s->kind = name == "break" ? StmtKind::kBreak : StmtKind::kContinue;
    s->line = line;
    expect_block_end();
    return s;
  }
  --p_;
  if (is_jinja_statement(name)) unsupported("unsupported statement '" + name + "'");
  error("unknown statement '" + name + "'");
}

std::vector<std::string> Parser::parse_targets() {
  std::vector<std::string> names;
  bool paren = skip_op("(");
  do {
    if (paren && is_op(")")) break;
    if (is_op("(")) unsupported("unsupported nested tuple unpacking");
    names.push_back(expect_name());
  } while (skip_op(","));
  if (paren) expect_op(")");
  return names;
}

StmtPtr Parser::parse_for(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kFor;
  s->line = line;
  s->targets = parse_targets();
  if (!skip_name("in")) error("expected 'in' in for loop, got " + describe());
  s->expr = parse_tuple(false, {"recursive"});
  if (skip_name("if")) s->cond = parse_expression();
  if (is_name("recursive")) unsupported("unsupported recursive for loop");
  expect_block_end();
  std::string found;
  s->body = parse_body({"endfor", "else"}, &found);
  ++p_;
  expect_block_end();
  if (found == "else") {
    s->else_body = parse_body({"endfor"}, &found);
    ++p_;
    expect_block_end();
  }
  return s;
}

StmtPtr Parser::parse_if(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kIf;
  s->line = line;
  ExprPtr cond = parse_tuple(false);
  while (true) {
    expect_block_end();
    std::string found;
    Body body = parse_body({"elif", "else", "endif"}, &found);
    s->branches.emplace_back(std::move(cond), std::move(body));
    ++p_;
    if (found == "elif") {
      cond = parse_tuple(false);
      continue;
    }
    expect_block_end();
    if (found == "else") {
      s->else_body = parse_body({"endif"}, &found);
      ++p_;
      expect_block_end();
    }
    return s;
  }
}

StmtPtr Parser::parse_set(int line) {
  auto s = std::make_unique<Stmt>();
  s->line = line;
  if (cur().type == Tok::kName && peek().type == Tok::kOp && peek().text == ".") {
    s->targets.push_back(expect_name());
    ++p_;
    s->attr = expect_name();
  } else {
    s->targets = parse_targets();
  }
  if (skip_op("=")) {
    s->kind = StmtKind::kSet;
    s->expr = parse_tuple(true);
    expect_block_end();
    return s;
  }
  if (!s->attr.empty() || s->targets.size() != 1) error("expected '=' in set statement");
  s->kind = StmtKind::kSetBlock;
  if (is_op("|")) s->expr = parse_filter_expr(node(ExprKind::kBlockValue, line));
  expect_block_end();
  std::string found;
  s->body = parse_body({"endset"}, &found);
  ++p_;
  expect_block_end();
  return s;
}

std::vector<Param> Parser::parse_params() {
  std::vector<Param> params;
  expect_op("(");
  while (!is_op(")")) {
    if (!params.empty()) expect_op(",");
    if (is_op(")")) break;
    Param p;
    p.name = expect_name();
    if (skip_op("=")) p.default_value = parse_expression();
    params.push_back(std::move(p));
  }
  expect_op(")");
  return params;
}

StmtPtr Parser::parse_macro(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kMacro;
  s->line = line;
  s->text = expect_name();
  s->params = parse_params();
  expect_block_end();
  std::string found;
  s->body = parse_body({"endmacro"}, &found);
  ++p_;
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_call_block(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kCallBlock;
  s->line = line;
  if (is_op("(")) s->params = parse_params();
  s->expr = parse_expression();
  if (s->expr->kind != ExprKind::kCall) error("expected a call in call block");
  expect_block_end();
  std::string found;
  s->body = parse_body({"endcall"}, &found);
  ++p_;
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_filter_block(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kFilterBlock;
  s->line = line;
  // `{% filter upper | trim %}`: the first filter has no leading pipe.
  ExprPtr chain = parse_filter(node(ExprKind::kBlockValue, line));
  s->expr = parse_filter_expr(std::move(chain));
  expect_block_end();
  std::string found;
  s->body = parse_body({"endfilter"}, &found);
  ++p_;
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_with(int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = StmtKind::kWith;
  s->line = line;
  while (cur().type != Tok::kBlockEnd) {
    if (!s->params.empty()) expect_op(",");
    Param p;
    p.name = expect_name();
    expect_op("=");
    p.default_value = parse_expression();
    s->params.push_back(std::move(p));
  }
  expect_block_end();
  std::string found;
  s->body = parse_body({"endwith"}, &found);
  ++p_;
  expect_block_end();
  return s;
}

bool Parser::is_tuple_end(std::initializer_list<const char*> extra_end) const {
  if (cur().type == Tok::kVarEnd || cur().type == Tok::kBlockEnd || cur().type == Tok::kEof) return true;
  if (is_op(")")) return true;
  for (const char* e : extra_end)
    if (is_name(e)) return true;
  return false;
}

ExprPtr Parser::parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra_end) {
  int line = cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (is_tuple_end(extra_end)) break;
    items.push_back(parse_expression(with_condexpr));
    if (is_op(",")) is_tuple = true;
    else break;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    error("expected an expression, got " + describe());
  }
  auto t = node(ExprKind::kTuple, line);
  t->args = std::move(items);
  return t;
}

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard g(*this);
  if (!with_condexpr) return parse_or();
  ExprPtr e = parse_or();
  while (is_name("if")) {
    int line = cur().line;
    ++p_;
    auto c = node(ExprKind::kCond, line);
    ExprPtr test = parse_or();
    ExprPtr otherwise;
    if (skip_name("else")) otherwise = parse_expression(true);
    c->args.push_back(std::move(test));
    c->args.push_back(std::move(e));
    c->args.push_back(std::move(otherwise));
    e = std::move(c);
  }
  return e;
}

ExprPtr Parser::parse_or() {
  ExprPtr l = parse_and();
  while (is_name("or")) {
    auto b = node(ExprKind::kBinary, cur().line);
    ++p_;
    b->name = "or";
    b->args.push_back(std::move(l));
    b->args.push_back(parse_and());
    l = std::move(b);
  }
  return l;
}

ExprPtr Parser::parse_and() {
  ExprPtr l = parse_not();
  while (is_name("and")) {
    auto b = node(ExprKind::kBinary, cur().line);
    ++p_;
    b->name = "and";
    b->args.push_back(std::move(l));
    b->args.push_back(parse_not());
    l = std::move(b);
  }
  return l;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    DepthGuard g(*this);
    auto u = node(ExprKind::kUnary, cur().line);
    ++p_;
    u->name = "not";
    u->args.push_back(parse_not());
    return u;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  int line = cur().line;
  ExprPtr first = parse_math1();
  ExprPtr cmp;
  while (true) {
    std::string op;
    if (cur().type == Tok::kOp &&
        (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" || cur().text == "<=" ||
         cur().text == ">=")) {
      op = cur().text;
      ++p_;
    } else if (is_name("in")) {
      op = "in";
      ++p_;
    } else if (is_name("not") && peek().type == Tok::kName && peek().text == "in") {
      op = "not in";
      p_ += 2;
    } else {
      break;
    }
    if (!cmp) {
      cmp = node(ExprKind::kCompare, line);
      cmp->args.push_back(std::move(first));
    }
    cmp->ops.push_back(op);
    cmp->args.push_back(parse_math1());
  }
  return cmp ? std::move(cmp) : std::move(first);
}

ExprPtr Parser::parse_math1() {
  ExprPtr l = parse_concat();
  while (is_op("+") || is_op("-")) {
    auto b = node(ExprKind::kBinary, cur().line);
    b->name = t_[p_++].text;
    b->args.push_back(std::move(l));
    b->args.push_back(parse_concat());
    l = std::move(b);
  }
  return l;
}

ExprPtr Parser::parse_concat() {
  ExprPtr l = parse_math2();
  while (is_op("~")) {
    auto b = node(ExprKind::kBinary, cur().line);
    b->name = t_[p_++].text;
    b->args.push_back(std::move(l));
    b->args.push_back(parse_math2());
    l = std::move(b);
  }
  return l;
}

ExprPtr Parser::parse_math2() {
  ExprPtr l = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    auto b = node(ExprKind::kBinary, cur().line);
    b->name = t_[p_++].text;
    b->args.push_back(std::move(l));
    b->args.push_back(parse_pow());
    l = std::move(b);
  }
  return l;
}

ExprPtr Parser::parse_pow() {
  ExprPtr l = parse_unary();
  while (is_op("**")) {
    auto b = node(ExprKind::kBinary, cur().line);
    b->name = t_[p_++].text;
    b->args.push_back(std::move(l));
    b->args.push_back(parse_unary());
    l = std::move(b);
  }
  return l;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  DepthGuard g(*this);
  ExprPtr e;
  if (is_op("-") || is_op("+")) {
    e = node(ExprKind::kUnary, cur().line);
    e->name = t_[p_++].text;
    e->args.push_back(parse_unary(false));
  } else {
    e = parse_primary();
  }
  e = parse_postfix(std::move(e));
  if (with_filter) e = parse_filter_expr(std::move(e));
  return e;
}

ExprPtr Parser::parse_primary() {
  const Token& tok = cur();
  int line = tok.line;
  if (tok.type == Tok::kName) {
    ++p_;
    auto c = node(ExprKind::kConst, line);
    if (tok.text == "true" || tok.text == "True") c->value = Value::boolean(true);
    else if (tok.text == "false" || tok.text == "False") c->value = Value::boolean(false);
    else if (tok.text == "none" || tok.text == "None") c->value = Value::none();
    else {
      c->kind = ExprKind::kName;
      c->name = tok.text;
    }
    return c;
  }
  if (tok.type == Tok::kString) {
    std::string s;
    while (cur().type == Tok::kString) s += t_[p_++].text;  // adjacent literals concatenate
    auto c = node(ExprKind::kConst, line);
    c->value = Value::string(std::move(s));
    return c;
  }
  if (tok.type == Tok::kInt || tok.type == Tok::kFloat) {
    auto c = node(ExprKind::kConst, line);
    errno = 0;
    if (tok.type == Tok::kInt) {
      long long v = std::strtoll(tok.text.c_str(), nullptr, 10);
      if (errno == ERANGE) unsupported("integer literal too large: " + tok.text);
      c->value = Value::integer(v);
    } else {
      c->value = Value::number(std::strtod(tok.text.c_str(), nullptr));
    }
    ++p_;
    return c;
  }
  if (skip_op("(")) {
    if (skip_op(")")) return node(ExprKind::kTuple, line);
    ExprPtr e = parse_tuple(true);
    expect_op(")");
    return e;
  }
  if (skip_op("[")) {
    auto l = node(ExprKind::kList, line);
    while (!is_op("]")) {
      if (!l->args.empty()) expect_op(",");
      if (is_op("]")) break;
      l->args.push_back(parse_expression());
    }
    expect_op("]");
    return l;
  }
  if (skip_op("{")) {
    auto d = node(ExprKind::kDict, line);
    while (!is_op("}")) {
      if (!d->args.empty()) expect_op(",");
      if (is_op("}")) break;
      d->args.push_back(parse_expression());
      expect_op(":");
      d->args.push_back(parse_expression());
    }
    expect_op("}");
    return d;
  }
  error("unexpected " + describe());
}

ExprPtr Parser::parse_postfix(ExprPtr e) {
  while (true) {
    if (is_op(".")) {
      int line = cur().line;
      ++p_;
      if (cur().type == Tok::kInt) {
        // `x.0` is item access in Jinja.
        auto g = node(ExprKind::kGetItem, line);
        g->args.push_back(std::move(e));
        auto idx = node(ExprKind::kConst, line);
        idx->value = Value::integer(std::strtoll(t_[p_++].text.c_str(), nullptr, 10));
        g->args.push_back(std::move(idx));
        e = std::move(g);
      } else {
        auto g = node(ExprKind::kGetAttr, line);
        g->name = expect_name();
        g->args.push_back(std::move(e));
        e = std::move(g);
      }
    } else if (is_op("[")) {
      e = parse_subscript(std::move(e));
    } else if (is_op("(")) {
      auto c = node(ExprKind::kCall, cur().line);
      c->args.push_back(std::move(e));
      parse_call_args(*c);
      e = std::move(c);
    } else {
      return e;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr e) {
  int line = cur().line;
  expect_op("[");
  ExprPtr parts[3];
  bool is_slice = false;
  int idx = 0;
  while (true) {
    if (!is_op(":") && !is_op("]")) parts[idx] = parse_expression();
    if (is_op(":")) {
      if (idx == 2) error("too many ':' in slice");
      is_slice = true;
      ++idx;
      ++p_;
      continue;
    }
    break;
  }
  expect_op("]");
  if (!is_slice) {
    if (!parts[0]) error("expected a subscript");
    auto g = node(ExprKind::kGetItem, line);
    g->args.push_back(std::move(e));
    g->args.push_back(std::move(parts[0]));
    return g;
  }
  auto s = node(ExprKind::kSlice, line);
  s->args.push_back(std::move(e));
  for (auto& p : parts) s->args.push_back(std::move(p));
  return s;
}

void Parser::parse_call_args(Expr& call) {
  expect_op("(");
  bool first = true;
  while (!is_op(")")) {
    if (!first) expect_op(",");
    first = false;
    if (is_op(")")) break;
    if (is_op("*") || is_op("**")) unsupported("unsupported *args/**kwargs in call");
    if (cur().type == Tok::kName && peek().type == Tok::kOp && peek().text == "=") {
      std::string key = expect_name();
      ++p_;
      call.kwargs.emplace_back(key, parse_expression());
    } else {
      if (!call.kwargs.empty()) error("positional argument after keyword argument");
      call.args.push_back(parse_expression());
    }
  }
  expect_op(")");
}

ExprPtr Parser::parse_filter(ExprPtr e) {
  int line = cur().line;
  std::string name = expect_name();
  if (is_op(".")) unsupported("unsupported dotted filter name '" + name + "'");
  if (!is_known_filter(name)) {
    --p_;
    unsupported("unsupported filter '" + name + "'");
  }
  auto f = node(ExprKind::kFilter, line);
  f->name = name;
  f->args.push_back(std::move(e));
  if (is_op("(")) parse_call_args(*f);
  return f;
}

ExprPtr Parser::parse_test(ExprPtr e) {
  int line = cur().line;
  auto t = node(ExprKind::kTest, line);
  t->negated = skip_name("not");
  std::string name = expect_name();
  if (!is_known_test(name)) {
    --p_;
    unsupported("unsupported test '" + name + "'");
  }
  t->name = name;
  t->args.push_back(std::move(e));
  if (is_op("(")) {
    parse_call_args(*t);
  } else if ((cur().type == Tok::kName || cur().type == Tok::kString || cur().type == Tok::kInt ||
              cur().type == Tok::kFloat || is_op("(") || is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) error("cannot chain multiple tests with 'is'");
    t->args.push_back(parse_postfix(parse_primary()));
  }
  return t;
}

ExprPtr Parser::parse_filter_expr(ExprPtr e) {
  while (true) {
    if (is_op("|")) {
      ++p_;
      e = parse_filter(std::move(e));
    } else if (is_name("is")) {
      ++p_;
      e = parse_test(std::move(e));
    } else if (is_op("(")) {
      auto c = node(ExprKind::kCall, cur().line);
      c->args.push_back(std::move(e));
      parse_call_args(*c);
      e = std::move(c);
    } else {
      return e;
    }
  }
}

}  // namespace

Body parse_template(std::string_view source) { return Parser(lex_template(source)).parse_all(); }

}  // namespace nibble::tpl

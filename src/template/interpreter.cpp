#include "template/interpreter.h"

#include "template/builtins.h"

namespace nibble::tpl {
namespace {

// A scope. Shared ownership because macros keep their defining scope alive (a macro can be
// stored in a namespace and called after its loop iteration ended).
struct Frame {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Frame> parent;

  const Value* find(std::string_view name) const {
    for (const Frame* f = this; f; f = f->parent.get())
      for (auto& kv : f->vars)
        if (kv.first == name) return &kv.second;
    return nullptr;
  }
  void set(const std::string& name, Value v) {
    for (auto& kv : vars)
      if (kv.first == name) {
        kv.second = std::move(v);
        return;
      }
    vars.emplace_back(name, std::move(v));
  }
};
using FramePtr = std::shared_ptr<Frame>;

FramePtr child_of(const FramePtr& parent) {
  auto f = std::make_shared<Frame>();
  f->parent = parent;
  return f;
}

enum class Flow { kNormal, kBreak, kContinue };

class Interpreter {
 public:
  explicit Interpreter(const Limits& limits) : limits_(limits) {}

  Flow exec(const Body& body, const FramePtr& frame, std::string& out);
  Value eval(const Expr& e, const FramePtr& frame);

 private:
  struct DepthGuard {
    Interpreter& in;
    explicit DepthGuard(Interpreter& i) : in(i) {
      if (++in.depth_ > in.limits_.max_depth) fail("maximum recursion depth exceeded");
    }
    ~DepthGuard() { --in.depth_; }
  };

  void step() {
    if (++steps_ > limits_.max_steps) fail("template exceeded its evaluation budget");
  }
  // A value an operator, filter or call has just built costs steps in proportion to its size (a
  // step per 256 bytes of a string, per 16 items of a list): one step each, a template could
  // build 64 MB strings in a loop (the chat-template fuzzer's 10-20 s renders).
  Value charged(Value v) {
    const size_t units = v.is_string() ? v.str().size() / 256 : v.is_sequence() ? v.items().size() / 16 : 0;
    if (units > 0 && (steps_ += units) > limits_.max_steps) fail("template exceeded its evaluation budget");
    return v;
  }
  void emit(std::string& out, std::string_view s) {
    if (out.size() + s.size() > limits_.max_output) fail("rendered output exceeds the size limit");
    out.append(s);
  }

  Flow exec_stmt(const Stmt& s, const FramePtr& frame, std::string& out);
  Flow exec_for(const Stmt& s, const FramePtr& frame, std::string& out);
  void assign(const std::vector<std::string>& targets, const Value& v, Frame& frame);
  Value eval_inner(const Expr& e, const FramePtr& frame);
  Value eval_compare(const Expr& e, const FramePtr& frame);
  CallArgs eval_args(const Expr& e, size_t first, const FramePtr& frame);
  Value make_macro(const Stmt& s, const FramePtr& frame, std::string name);

  const Limits& limits_;
  uint64_t steps_ = 0;
  int depth_ = 0;
  Value block_value_;  // what kBlockValue evaluates to while a filter block is being applied

 public:
  // Scopes that define macros: a macro holds its scope and the scope holds the macro, so these
  // reference cycles are broken by hand when rendering ends.
  std::vector<FramePtr> macro_frames_;
};

Flow Interpreter::exec(const Body& body, const FramePtr& frame, std::string& out) {
  DepthGuard g(*this);
  for (auto& s : body) {
    Flow f;
    try {
      f = exec_stmt(*s, frame, out);
    } catch (TemplateError& err) {
      if (err.line == 0) err.line = s->line;
      throw;
    }
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

void Interpreter::assign(const std::vector<std::string>& targets, const Value& v, Frame& frame) {
  if (targets.size() == 1) {
    frame.set(targets[0], v);
    return;
  }
  List items = iterate(v);
  if (items.size() != targets.size())
    fail(items.size() < targets.size() ? "not enough values to unpack (expected " + std::to_string(targets.size()) +
                                             ", got " + std::to_string(items.size()) + ")"
                                       : "too many values to unpack (expected " + std::to_string(targets.size()) + ")");
  for (size_t i = 0; i < targets.size(); ++i) frame.set(targets[i], items[i]);
}

Flow Interpreter::exec_stmt(const Stmt& s, const FramePtr& frame, std::string& out) {
  step();
  switch (s.kind) {
    case StmtKind::kText: emit(out, s.text); return Flow::kNormal;
    case StmtKind::kOutput: {
      Value v = eval(*s.expr, frame);
      if (v.is_string()) emit(out, v.str());
      else emit(out, v.to_str());
      return Flow::kNormal;
    }
    case StmtKind::kIf:
      for (auto& [cond, body] : s.branches)
        if (eval(*cond, frame).truthy()) return exec(body, frame, out);
      return exec(s.else_body, frame, out);
    case StmtKind::kFor: return exec_for(s, frame, out);
    case StmtKind::kSet: {
      Value v = eval(*s.expr, frame);
      if (!s.attr.empty()) {
        const Value* ns = frame->find(s.targets[0]);
        if (!ns || !ns->is_namespace()) fail("can only assign attributes of a namespace(), not of '" + s.targets[0] + "'");
        if (!s.attr.empty() && s.attr[0] == '_')
          fail("chat templates cannot store underscore-prefixed attributes on a namespace");
        ns->namespace_ref().set(s.attr, std::move(v));
      } else {
        assign(s.targets, v, *frame);
      }
      return Flow::kNormal;
    }
    case StmtKind::kSetBlock: {
      std::string body;
      exec(s.body, child_of(frame), body);
      Value v = Value::string(std::move(body));
      if (s.expr) {
        Value saved = block_value_;
        block_value_ = v;
        v = eval(*s.expr, frame);
        block_value_ = saved;
      }
      frame->set(s.targets[0], std::move(v));
      return Flow::kNormal;
    }
    case StmtKind::kMacro: frame->set(s.text, make_macro(s, frame, s.text)); return Flow::kNormal;
    case StmtKind::kCallBlock: {
      // The body becomes `caller`, a macro taking the call block's parameters.
      const Expr& call = *s.expr;
      Value callee = eval(*call.args[0], frame);
      CallArgs args = eval_args(call, 1, frame);
      args.keyword.emplace_back("caller", make_macro(s, frame, "caller"));
      Value r = call_value(callee, args);
      emit(out, r.to_str());
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      std::string body;
      Flow f = exec(s.body, child_of(frame), body);
      Value saved = block_value_;
      block_value_ = Value::string(std::move(body));
      Value v = eval(*s.expr, frame);
      block_value_ = saved;
      emit(out, v.to_str());
      return f;
    }
    case StmtKind::kWith: {
      FramePtr inner = child_of(frame);
      for (auto& p : s.params) inner->set(p.name, eval(*p.default_value, frame));
      return exec(s.body, inner, out);
    }
    case StmtKind::kBreak: return Flow::kBreak;
    case StmtKind::kContinue: return Flow::kContinue;
  }
  return Flow::kNormal;
}

Flow Interpreter::exec_for(const Stmt& s, const FramePtr& frame, std::string& out) {
  List all = iterate(eval(*s.expr, frame));
  List items;
  if (s.cond) {
    // `for x in xs if cond`: filtered first, so loop.length/index count the kept items.
    for (auto& v : all) {
      step();
      FramePtr f = child_of(frame);
      assign(s.targets, v, *f);
      if (eval(*s.cond, f).truthy()) items.push_back(v);
    }
  } else {
    items = std::move(all);
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    step();
    // Each iteration is a fresh scope: a `set` inside does not survive into the next one.
    FramePtr f = child_of(frame);
    assign(s.targets, items[i], *f);
    Dict loop;
    loop.items.reserve(12);
    loop.items.emplace_back("index", Value::integer(i + 1));
    loop.items.emplace_back("index0", Value::integer(i));
    loop.items.emplace_back("revindex", Value::integer(n - i));
    loop.items.emplace_back("revindex0", Value::integer(n - i - 1));
    loop.items.emplace_back("first", Value::boolean(i == 0));
    loop.items.emplace_back("last", Value::boolean(i == n - 1));
    loop.items.emplace_back("length", Value::integer(n));
    loop.items.emplace_back("depth", Value::integer(1));
    loop.items.emplace_back("depth0", Value::integer(0));
    loop.items.emplace_back("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
    loop.items.emplace_back("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
    loop.items.emplace_back("cycle", Value::function("loop.cycle", [i](CallArgs& a) -> Value {
                              if (a.positional.empty()) fail("no items for cycling given");
                              return a.positional[static_cast<size_t>(i) % a.positional.size()];
                            }));
    f->set("loop", Value::dict(std::move(loop)));
    Flow fl = exec(s.body, f, out);
    if (fl == Flow::kBreak) break;
  }
  if (n == 0) return exec(s.else_body, child_of(frame), out);
  return Flow::kNormal;
}

Value Interpreter::make_macro(const Stmt& s, const FramePtr& frame, std::string name) {
  const Stmt* def = &s;
  FramePtr closure = frame;
  macro_frames_.push_back(frame);
  return Value::function(name, [this, def, closure, name](CallArgs& args) -> Value {
    DepthGuard g(*this);
    FramePtr f = child_of(closure);
    size_t np = def->params.size();
    List varargs;
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < np) f->set(def->params[i].name, args.positional[i]);
      else varargs.push_back(args.positional[i]);
    }
    Dict kwargs;
    for (auto& [k, v] : args.keyword) {
      bool is_param = false;
      for (size_t i = 0; i < np; ++i)
        if (def->params[i].name == k) {
          if (i < args.positional.size()) fail("macro '" + name + "' got multiple values for argument '" + k + "'");
          is_param = true;
        }
      if (is_param || k == "caller") f->set(k, v);
      else kwargs.set(k, v);
    }
    for (size_t i = args.positional.size(); i < np; ++i) {
      const Param& p = def->params[i];
      bool given = false;
      for (auto& kv : args.keyword) given |= kv.first == p.name;
      if (given) continue;
      // Defaults are evaluated at call time, in the macro's scope (so `b=a` sees `a`).
      f->set(p.name, p.default_value ? eval(*p.default_value, f)
                                     : Value::undefined("parameter '" + p.name + "' was not provided"));
    }
    f->set("varargs", Value::tuple(std::move(varargs)));
    f->set("kwargs", Value::dict(std::move(kwargs)));
    std::string out;
    Flow fl = exec(def->body, f, out);
    if (fl != Flow::kNormal) fail("break/continue outside of a loop");
    return Value::string(std::move(out));
  });
}

CallArgs Interpreter::eval_args(const Expr& e, size_t first, const FramePtr& frame) {
  CallArgs a;
  for (size_t i = first; i < e.args.size(); ++i) a.positional.push_back(eval(*e.args[i], frame));
  for (auto& [k, v] : e.kwargs) a.keyword.emplace_back(k, eval(*v, frame));
  return a;
}

Value Interpreter::eval(const Expr& e, const FramePtr& frame) {
  DepthGuard g(*this);
  step();
  try {
    return eval_inner(e, frame);
  } catch (TemplateError& err) {
    if (err.line == 0) err.line = e.line;
    throw;
  }
}

Value Interpreter::eval_compare(const Expr& e, const FramePtr& frame) {
  // Chained: a < b < c means a < b and b < c, each operand evaluated once.
  Value left = eval(*e.args[0], frame);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.args[i + 1], frame);
    const std::string& op = e.ops[i];
    bool r;
    if (op == "==") r = values_equal(left, right);
    else if (op == "!=") r = !values_equal(left, right);
    else if (op == "in") r = contains(right, left);
    else if (op == "not in") r = !contains(right, left);
    else {
      if (left.is_undefined()) fail(left.str().empty() ? "undefined value in comparison" : left.str());
      if (right.is_undefined()) fail(right.str().empty() ? "undefined value in comparison" : right.str());
      int c = compare_values(left, right);
      r = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
    }
    if (!r) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value Interpreter::eval_inner(const Expr& e, const FramePtr& frame) {
  switch (e.kind) {
    case ExprKind::kConst: return e.value;
    case ExprKind::kName: {
      const Value* v = frame->find(e.name);
      return v ? *v : Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprKind::kBlockValue: return block_value_;
    case ExprKind::kGetAttr: return get_attr(eval(*e.args[0], frame), e.name);
    case ExprKind::kGetItem: return get_item(eval(*e.args[0], frame), eval(*e.args[1], frame));
    case ExprKind::kSlice: {
      Value obj = eval(*e.args[0], frame);
      Value parts[3];
      for (int i = 0; i < 3; ++i) parts[i] = e.args[i + 1] ? eval(*e.args[i + 1], frame) : Value::none();
      return slice_value(obj, parts[0], parts[1], parts[2]);
    }
    case ExprKind::kCall: {
      Value callee = eval(*e.args[0], frame);
      CallArgs args = eval_args(e, 1, frame);
      return charged(call_value(callee, args));
    }
    case ExprKind::kFilter: {
      Value v = eval(*e.args[0], frame);
      CallArgs args = eval_args(e, 1, frame);
      return charged(apply_filter(e.name, v, args));
    }
    case ExprKind::kTest: {
      Value v = eval(*e.args[0], frame);
      CallArgs args = eval_args(e, 1, frame);
      return Value::boolean(apply_test(e.name, v, args) != e.negated);
    }
    case ExprKind::kUnary: {
      Value v = eval(*e.args[0], frame);
      if (e.name == "not") return Value::boolean(!v.truthy());
      if (v.is_undefined()) fail(v.str());
      if (!v.is_number()) fail("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
      if (e.name == "+") return v.is_float() ? v : Value::integer(v.as_int());
      if (v.is_float()) return Value::number(-v.as_float());
      if (v.as_int() == INT64_MIN) fail("integer overflow");
      return Value::integer(-v.as_int());
    }
    case ExprKind::kBinary: {
      if (e.name == "and") {
        Value l = eval(*e.args[0], frame);
        return l.truthy() ? eval(*e.args[1], frame) : l;
      }
      if (e.name == "or") {
        Value l = eval(*e.args[0], frame);
        return l.truthy() ? l : eval(*e.args[1], frame);
      }
      Value l = eval(*e.args[0], frame);
      Value r = eval(*e.args[1], frame);
      return charged(binary_op(e.name, l, r));
    }
    case ExprKind::kCompare: return eval_compare(e, frame);
    case ExprKind::kCond:
      if (eval(*e.args[0], frame).truthy()) return eval(*e.args[1], frame);
      return e.args[2] ? eval(*e.args[2], frame) : Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    case ExprKind::kList:
    case ExprKind::kTuple: {
      List items;
      items.reserve(e.args.size());
      for (auto& a : e.args) items.push_back(eval(*a, frame));
      return e.kind == ExprKind::kList ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::kDict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], frame);
        if (!k.is_string()) fail_unsupported("unsupported non-string dict key (" + k.type_name() + ")");
        d.set(k.str(), eval(*e.args[i + 1], frame));
      }
      return Value::dict(std::move(d));
    }
  }
  return Value();
}

}  // namespace

std::string render_program(const Body& program, const Dict& vars, std::optional<std::time_t> now,
                           const Limits& limits) {
  auto globals = std::make_shared<Frame>();
  std::vector<Value> namespaces;
  Dict g;
  add_globals(g, now, &namespaces);
  globals->vars = std::move(g.items);
  auto context = child_of(globals);
  context->vars = vars.items;
  Interpreter in(limits);
  // Namespaces can hold themselves (`set ns.me = ns`) and macros hold their scope: empty them
  // all at the end (also on error) so that nothing leaks.
  struct Cleanup {
    std::vector<Value>& ns;
    Interpreter& in;
    ~Cleanup() {
      for (auto& v : ns) v.namespace_ref().items.clear();
      for (auto& f : in.macro_frames_) f->vars.clear();
    }
  } cleanup{namespaces, in};
  std::string out;
  if (in.exec(program, context, out) != Flow::kNormal) fail("break/continue outside of a loop");
  return out;
}

}  // namespace nibble::tpl

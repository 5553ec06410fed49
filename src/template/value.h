// Value: what a chat template computes with. It follows Python's semantics (what Jinja2 runs on)
// closely enough that printing, comparing and serializing give the bytes transformers gives.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace nibble::tpl {

// Every failure inside the interpreter is thrown as this and turned into a Status at the
// render()/parse() boundary. line 0 means "not known yet": the innermost AST node that sees it
// fills in its own line.
struct TemplateError {
  int line = 0;
  std::string message;
  bool unsupported = false;  // a construct we do not implement, as opposed to a template error
};
[[noreturn]] void fail(std::string message);
[[noreturn]] void fail_unsupported(std::string message);

enum class Kind : uint8_t {
  kUndefined,  // jinja2.Undefined: prints as "", iterates empty, errors on attribute access
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kTuple,
  kDict,
  kNamespace,  // jinja2 namespace(): the one mutable object templates may assign into
  kFunction,
};

class Value;
using List = std::vector<Value>;

// Python dicts keep insertion order; chat templates print tool schemas with tojson, so the
// order of the caller's JSON must survive. Keys are strings (JSON keys always are).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  const Value* kwarg(std::string_view name) const;
};

struct Function {
  std::string name;
  std::function<Value(CallArgs&)> call;
};

class Value {
 public:
  Value() = default;  // undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  static Value list(List items);
  static Value tuple(List items);
  static Value dict(Dict d);
  static Value new_namespace(Dict d);
  static Value function(std::string name, std::function<Value(CallArgs&)> fn);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_sequence() const { return kind_ == Kind::kList || kind_ == Kind::kTuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_function() const { return kind_ == Kind::kFunction; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }  // bool is an int in Python
  double as_float() const { return kind_ == Kind::kFloat ? f_ : static_cast<double>(as_int()); }
  const std::string& str() const { return *s_; }  // string, or an undefined's hint
  const List& items() const { return *list_; }
  const Dict& dict_ref() const { return *dict_; }
  Dict& namespace_ref() const { return *dict_; }
  const Function& fn() const { return *fn_; }

  bool truthy() const;
  std::string to_str() const;   // Python str()
  void append_repr(std::string& out, int depth) const;
  std::string repr() const;     // Python repr()
  std::string type_name() const;  // Python's type name, for error messages
  // json.dumps(self, ensure_ascii, indent, separators, sort_keys); indent == nullptr means None.
  void dump_json(std::string& out, bool ensure_ascii, const std::string* indent, std::string_view item_sep,
                 std::string_view key_sep, bool sort_keys, int depth = 0) const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Function> fn_;
};

bool values_equal(const Value& a, const Value& b);
// -1, 0, 1 for <, ==, >; throws the TypeError Python would for unorderable types.
int compare_values(const Value& a, const Value& b);

}  // namespace nibble::tpl

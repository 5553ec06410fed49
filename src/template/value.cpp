#include "template/value.h"

#include <algorithm>
#include <cmath>

#include "template/text.h"

namespace nibble::tpl {

// Namespaces can be made to contain themselves (`set ns.x = ns`); printing or comparing such a
// value must fail, not overflow the stack.
static constexpr int kMaxValueDepth = 200;

void fail(std::string message) { throw TemplateError{0, std::move(message), false}; }
void fail_unsupported(std::string message) { throw TemplateError{0, std::move(message), true}; }

const Value* Dict::find(std::string_view key) const {
  for (auto& kv : items)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void Dict::set(const std::string& key, Value v) {
  for (auto& kv : items)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

const Value* CallArgs::kwarg(std::string_view name) const {
  for (auto& kv : keyword)
    if (kv.first == name) return &kv.second;
  return nullptr;
}

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}
Value Value::none() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}
Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}
Value Value::number(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::list(List items) {
  Value v;
  v.kind_ = Kind::kList;
  v.list_ = std::make_shared<const List>(std::move(items));
  return v;
}
Value Value::tuple(List items) {
  Value v = list(std::move(items));
  v.kind_ = Kind::kTuple;
  return v;
}
Value Value::dict(Dict d) {
  Value v;
  v.kind_ = Kind::kDict;
  v.dict_ = std::make_shared<Dict>(std::move(d));
  return v;
}
Value Value::new_namespace(Dict d) {
  Value v = dict(std::move(d));
  v.kind_ = Kind::kNamespace;
  return v;
}
Value Value::function(std::string name, std::function<Value(CallArgs&)> fn) {
  Value v;
  v.kind_ = Kind::kFunction;
  v.fn_ = std::make_shared<const Function>(Function{std::move(name), std::move(fn)});
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return none();
    case nlohmann::ordered_json::value_t::boolean: return boolean(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return integer(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      // Python ints are unbounded; past int64 we keep the magnitude as a float (rare: ids, seeds).
      return u > static_cast<uint64_t>(INT64_MAX) ? number(static_cast<double>(u)) : integer(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return number(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return string(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List l;
      l.reserve(j.size());
      for (auto& e : j) l.push_back(from_json(e));
      return list(std::move(l));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      d.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) d.items.emplace_back(it.key(), from_json(it.value()));
      return dict(std::move(d));
    }
    default: return none();  // binary / discarded never come from JSON text
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b_;
    case Kind::kInt: return i_ != 0;
    case Kind::kFloat: return f_ != 0;
    case Kind::kString: return !s_->empty();
    case Kind::kList:
    case Kind::kTuple: return !list_->empty();
    case Kind::kDict: return !dict_->items.empty();
    case Kind::kNamespace:
    case Kind::kFunction: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "NoneType";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kList: return "list";
    case Kind::kTuple: return "tuple";
    case Kind::kDict: return "dict";
    case Kind::kNamespace: return "Namespace";
    case Kind::kFunction: return "function";
  }
  return "?";
}

std::string Value::to_str() const {
  switch (kind_) {
    case Kind::kUndefined: return "";
    case Kind::kString: return *s_;
    default: {
      std::string out;
      append_repr(out, 0);
      return out;
    }
  }
}

std::string Value::repr() const {
  std::string out;
  append_repr(out, 0);
  return out;
}

void Value::append_repr(std::string& out, int depth) const {
  if (depth > kMaxValueDepth) fail("maximum recursion depth exceeded while printing a value");
  switch (kind_) {
    case Kind::kUndefined: out += "Undefined"; return;
    case Kind::kNone: out += "None"; return;
    case Kind::kBool: out += b_ ? "True" : "False"; return;
    case Kind::kInt: out += std::to_string(i_); return;
    case Kind::kFloat: out += py_float_repr(f_); return;
    case Kind::kString: out += py_repr_string(*s_); return;
    case Kind::kList:
    case Kind::kTuple: {
      bool tup = kind_ == Kind::kTuple;
      out += tup ? '(' : '[';
      for (size_t i = 0; i < list_->size(); ++i) {
        if (i) out += ", ";
        (*list_)[i].append_repr(out, depth + 1);
      }
      if (tup && list_->size() == 1) out += ',';
      out += tup ? ')' : ']';
      return;
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      if (kind_ == Kind::kNamespace) out += "<Namespace ";
      out += '{';
      bool first = true;
      for (auto& kv : dict_->items) {
        if (!first) out += ", ";
        first = false;
        out += py_repr_string(kv.first);
        out += ": ";
        kv.second.append_repr(out, depth + 1);
      }
      out += '}';
      if (kind_ == Kind::kNamespace) out += '>';
      return;
    }
    case Kind::kFunction: out += "<function " + fn_->name + ">"; return;
  }
}

void Value::dump_json(std::string& out, bool ensure_ascii, const std::string* indent, std::string_view item_sep,
                      std::string_view key_sep, bool sort_keys, int depth) const {
  if (depth > kMaxValueDepth) fail("maximum recursion depth exceeded in tojson");
  auto newline = [&](int level) {
    out += '\n';
    for (int i = 0; i < level; ++i) out += *indent;
  };
  switch (kind_) {
    case Kind::kNone: out += "null"; return;
    case Kind::kBool: out += b_ ? "true" : "false"; return;
    case Kind::kInt: out += std::to_string(i_); return;
    case Kind::kFloat:
      if (std::isnan(f_)) out += "NaN";
      else if (std::isinf(f_)) out += f_ > 0 ? "Infinity" : "-Infinity";
      else out += py_float_repr(f_);
      return;
    case Kind::kString: json_escape(out, *s_, ensure_ascii); return;
    case Kind::kList:
    case Kind::kTuple: {
      if (list_->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < list_->size(); ++i) {
        if (i) out += item_sep;
        if (indent) newline(depth + 1);
        (*list_)[i].dump_json(out, ensure_ascii, indent, item_sep, key_sep, sort_keys, depth + 1);
      }
      if (indent) newline(depth);
      out += ']';
      return;
    }
    case Kind::kDict: {
      if (dict_->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> order;
      for (auto& kv : dict_->items) order.push_back(&kv);
      if (sort_keys)
        std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
      out += '{';
      bool first = true;
      for (auto* kv : order) {
        if (!first) out += item_sep;
        first = false;
        if (indent) newline(depth + 1);
        json_escape(out, kv->first, ensure_ascii);
        out += key_sep;
        kv->second.dump_json(out, ensure_ascii, indent, item_sep, key_sep, sort_keys, depth + 1);
      }
      if (indent) newline(depth);
      out += '}';
      return;
    }
    default: fail("Object of type " + type_name() + " is not JSON serializable");
  }
}

static bool equal_impl(const Value& a, const Value& b, int depth) {
  if (depth > kMaxValueDepth) fail("maximum recursion depth exceeded in comparison");
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return true;
    case Kind::kString: return a.str() == b.str();
    case Kind::kList:
    case Kind::kTuple: {
      if (a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i)
        if (!equal_impl(a.items()[i], b.items()[i], depth + 1)) return false;
      return true;
    }
    case Kind::kDict: {
      // Python dict equality ignores order.
      if (a.dict_ref().items.size() != b.dict_ref().items.size()) return false;
      for (auto& kv : a.dict_ref().items) {
        const Value* o = b.dict_ref().find(kv.first);
        if (!o || !equal_impl(kv.second, *o, depth + 1)) return false;
      }
      return true;
    }
    case Kind::kNamespace: return &a.namespace_ref() == &b.namespace_ref();  // identity, as in Python
    case Kind::kFunction: return &a.fn() == &b.fn();
    default: return false;
  }
}

bool values_equal(const Value& a, const Value& b) { return equal_impl(a, b, 0); }

int compare_values(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_float(), y = b.as_float();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    // Byte order of UTF-8 equals code point order, which is what Python compares.
    int c = a.str().compare(b.str());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.kind() == b.kind() && a.is_sequence()) {
    const List &x = a.items(), &y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (values_equal(x[i], y[i])) continue;
      return compare_values(x[i], y[i]);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  fail("'<' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
}

}  // namespace nibble::tpl

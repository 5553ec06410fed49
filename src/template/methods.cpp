// Attribute and item access, Python operators, and the methods of str, dict and list that
// chat templates call (message.content.split('</think>'), tool.items(), ...).
#include <cmath>
#include <limits>

#include "template/builtins.h"
#include "template/text.h"

namespace nibble::tpl {

const Value* arg_at(const CallArgs& a, size_t i, std::string_view name) {
  if (i < a.positional.size()) return &a.positional[i];
  return a.kwarg(name);
}
std::string arg_str(const CallArgs& a, size_t i, std::string_view name, std::string fallback) {
  const Value* v = arg_at(a, i, name);
  return v ? v->to_str() : fallback;
}
int64_t arg_int(const CallArgs& a, size_t i, std::string_view name, int64_t fallback) {
  const Value* v = arg_at(a, i, name);
  if (!v || v->is_none()) return fallback;
  if (!v->is_int() && !v->is_bool()) fail("'" + v->type_name() + "' object cannot be interpreted as an integer");
  return v->as_int();
}
bool arg_bool(const CallArgs& a, size_t i, std::string_view name, bool fallback) {
  const Value* v = arg_at(a, i, name);
  return v ? v->truthy() : fallback;
}

namespace {

[[noreturn]] void undefined_error(const Value& u) { fail(u.str().empty() ? "value is undefined" : u.str()); }

std::string object_name(const Value& v) {
  std::string s = "'";
  s += v.type_name();
  s += " object'";
  return s;
}

// Python's None-or-str argument (strip(None) == strip()).
std::optional<std::string> opt_str(const CallArgs& a, size_t i, std::string_view name) {
  const Value* v = arg_at(a, i, name);
  if (!v || v->is_none()) return std::nullopt;
  if (!v->is_string()) fail("argument must be str or None, not " + v->type_name());
  return v->str();
}

Value str_list(std::vector<std::string> parts) {
  List l;
  l.reserve(parts.size());
  for (auto& p : parts) l.push_back(Value::string(std::move(p)));
  return Value::list(std::move(l));
}

// Normalizes Python slice/index bounds over a sequence of length n.
int64_t norm_index(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

bool starts_or_ends(const std::string& s, const Value& what, bool ends) {
  auto one = [&](const Value& p) {
    if (!p.is_string()) fail("startswith/endswith first arg must be str or a tuple of str, not " + p.type_name());
    const std::string& x = p.str();
    if (x.size() > s.size()) return false;
    return ends ? s.compare(s.size() - x.size(), x.size(), x) == 0 : s.compare(0, x.size(), x) == 0;
  };
  if (what.is_sequence()) {
    for (auto& p : what.items())
      if (one(p)) return true;
    return false;
  }
  return one(what);
}

// str.format with automatic or explicit field numbers and names; format specs are rejected.
std::string str_format(const std::string& fmt, const CallArgs& a) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      if (close == std::string::npos) fail("Single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      if (field.find_first_of(":!") != std::string::npos) fail_unsupported("unsupported format spec in str.format: '" + field + "'");
      const Value* v = nullptr;
      if (field.empty()) {
        v = auto_idx < a.positional.size() ? &a.positional[auto_idx] : nullptr;
        ++auto_idx;
      } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
        size_t idx = std::strtoul(field.c_str(), nullptr, 10);
        v = idx < a.positional.size() ? &a.positional[idx] : nullptr;
      } else {
        v = a.kwarg(field);
      }
      if (!v) fail("Replacement index out of range in str.format: '{" + field + "}'");
      out += v->to_str();
      i = close;
    } else if (c == '}') {
      fail("Single '}' encountered in format string");
    } else {
      out += c;
    }
  }
  return out;
}

Value string_method(const Value& self, const std::string& name) {
  // The method closes over the string value (shared, so this is cheap).
  auto m = [&](auto fn) {
    return Value::function("str." + name, [self, fn](CallArgs& a) -> Value { return fn(self.str(), a); });
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    bool l = name != "rstrip", r = name != "lstrip";
    return m([l, r](const std::string& s, CallArgs& a) { return Value::string(py_strip(s, opt_str(a, 0, "chars"), l, r)); });
  }
  if (name == "split" || name == "rsplit") {
    bool right = name == "rsplit";
    return m([right](const std::string& s, CallArgs& a) {
      auto sep = opt_str(a, 0, "sep");
      if (sep && sep->empty()) fail("empty separator");
      int64_t maxsplit = arg_int(a, 1, "maxsplit", -1);
      return str_list(right ? py_rsplit(s, sep, maxsplit) : py_split(s, sep, maxsplit));
    });
  }
  if (name == "splitlines")
    return m([](const std::string& s, CallArgs& a) {
      std::vector<std::string> lines;
      std::string cur;
      bool keep = arg_bool(a, 0, "keepends", false);
      std::u32string u = decode_utf8(s);
      for (size_t i = 0; i < u.size(); ++i) {
        char32_t c = u[i];
        bool br = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 ||
                  c == 0x2028 || c == 0x2029;
        if (!br) {
          append_utf8(cur, c);
          continue;
        }
        if (keep) append_utf8(cur, c);
        if (c == '\r' && i + 1 < u.size() && u[i + 1] == '\n') {
          if (keep) cur += '\n';
          ++i;
        }
        lines.push_back(std::move(cur));
        cur.clear();
      }
      if (!cur.empty()) lines.push_back(std::move(cur));
      return str_list(std::move(lines));
    });
  if (name == "startswith" || name == "endswith") {
    bool ends = name == "endswith";
    return m([ends](const std::string& s, CallArgs& a) {
      if (a.positional.empty()) fail("startswith/endswith takes at least 1 argument");
      if (a.positional.size() > 1) fail_unsupported("unsupported start/end arguments to startswith/endswith");
      return Value::boolean(starts_or_ends(s, a.positional[0], ends));
    });
  }
  if (name == "upper") return m([](const std::string& s, CallArgs&) { return Value::string(py_upper(s)); });
  if (name == "lower") return m([](const std::string& s, CallArgs&) { return Value::string(py_lower(s)); });
  if (name == "title") return m([](const std::string& s, CallArgs&) { return Value::string(py_title(s)); });
  if (name == "capitalize") return m([](const std::string& s, CallArgs&) { return Value::string(py_capitalize(s)); });
  if (name == "replace")
    return m([](const std::string& s, CallArgs& a) {
      if (a.positional.size() < 2) fail("replace expected at least 2 arguments");
      std::string out = py_replace(s, a.positional[0].to_str(), a.positional[1].to_str(), arg_int(a, 2, "count", -1));
      if (out.size() > kMaxBuiltSize) fail("string too large");
      return Value::string(std::move(out));
    });
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count")
    return m([name](const std::string& s, CallArgs& a) {
      if (a.positional.empty() || !a.positional[0].is_string()) fail("str." + name + " needs a str argument");
      if (a.positional.size() > 1) fail_unsupported("unsupported start/end arguments to str." + name);
      const std::string& sub = a.positional[0].str();
      if (name == "count") {
        if (sub.empty()) return Value::integer(static_cast<int64_t>(count_code_points(s)) + 1);
        int64_t n = 0;
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
        return Value::integer(n);
      }
      size_t p = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
      if (p == std::string::npos) {
        if (name == "index" || name == "rindex") fail("substring not found");
        return Value::integer(-1);
      }
      return Value::integer(static_cast<int64_t>(count_code_points(std::string_view(s).substr(0, p))));
    });
  if (name == "format") return m([](const std::string& s, CallArgs& a) { return Value::string(str_format(s, a)); });
  if (name == "join")
    return m([](const std::string& s, CallArgs& a) {
      if (a.positional.empty()) fail("join takes exactly one argument");
      std::string out;
      bool first = true;
      for (auto& v : iterate(a.positional[0])) {
        if (!v.is_string()) fail("sequence item: expected str instance, " + v.type_name() + " found");
        if (!first) out += s;
        first = false;
        out += v.str();
        if (out.size() > kMaxBuiltSize) fail("string too large");
      }
      return Value::string(std::move(out));
    });
  if (name == "removeprefix" || name == "removesuffix") {
    bool suffix = name == "removesuffix";
    return m([suffix](const std::string& s, CallArgs& a) {
      std::string x = arg_str(a, 0, "", "");
      if (!starts_or_ends(s, Value::string(x), suffix)) return Value::string(s);
      return Value::string(suffix ? s.substr(0, s.size() - x.size()) : s.substr(x.size()));
    });
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" ||
      name == "isupper")
    return m([name](const std::string& s, CallArgs&) {
      std::u32string u = decode_utf8(s);
      if (u.empty()) return Value::boolean(false);
      bool cased = false, ok = true;
      for (char32_t c : u) {
        bool digit = c >= '0' && c <= '9', alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (name == "isdigit") ok &= digit;
        else if (name == "isalpha") ok &= alpha;
        else if (name == "isalnum") ok &= digit || alpha;
        else if (name == "isspace") ok &= is_py_space(c);
        else if (name == "islower") {
          ok &= !(c >= 'A' && c <= 'Z');
          cased |= c >= 'a' && c <= 'z';
        } else {
          ok &= !(c >= 'a' && c <= 'z');
          cased |= c >= 'A' && c <= 'Z';
        }
      }
      if (name == "islower" || name == "isupper") ok &= cased;
      return Value::boolean(ok);
    });
  static const char* kPythonOnly[] = {"casefold", "center", "encode", "expandtabs", "isascii", "isdecimal",
                                      "isidentifier", "isnumeric", "isprintable", "istitle", "ljust", "maketrans",
                                      "partition", "rjust", "rpartition", "swapcase", "translate", "zfill",
                                      "format_map"};
  for (const char* n : kPythonOnly)
    if (name == n) {
      std::string msg = "unsupported string method '" + name + "'";
      return Value::function("str." + name, [msg](CallArgs&) -> Value { fail_unsupported(msg); });
    }
  return Value::undefined(object_name(self) + " has no attribute '" + name + "'");
}

bool is_mutating_method(const Value& obj, const std::string& name) {
  static const char* kList[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};
  static const char* kDict[] = {"pop", "popitem", "setdefault", "update", "clear"};
  if (obj.is_sequence() && obj.kind() == Kind::kList) {
    for (const char* n : kList)
      if (name == n) return true;
  } else if (obj.is_dict()) {
    for (const char* n : kDict)
      if (name == n) return true;
  }
  return false;
}

Value dict_method(const Value& self, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    return Value::function("dict." + name, [self, name](CallArgs&) -> Value {
      List out;
      for (auto& [k, v] : self.dict_ref().items) {
        if (name == "items") out.push_back(Value::tuple({Value::string(k), v}));
        else out.push_back(name == "keys" ? Value::string(k) : v);
      }
      return Value::list(std::move(out));
    });
  }
  if (name == "get")
    return Value::function("dict.get", [self](CallArgs& a) -> Value {
      if (a.positional.empty()) fail("get expected at least 1 argument");
      const Value* v = a.positional[0].is_string() ? self.dict_ref().find(a.positional[0].str()) : nullptr;
      if (v) return *v;
      return a.positional.size() > 1 ? a.positional[1] : Value::none();
    });
  if (name == "copy") return Value::function("dict.copy", [self](CallArgs&) { return Value::dict(self.dict_ref()); });
  return Value();  // not a method
}

Value list_method(const Value& self, const std::string& name) {
  if (name == "index" || name == "count")
    return Value::function("list." + name, [self, name](CallArgs& a) -> Value {
      if (a.positional.empty()) fail("list." + name + " takes an argument");
      int64_t n = 0;
      for (size_t i = 0; i < self.items().size(); ++i)
        if (values_equal(self.items()[i], a.positional[0])) {
          if (name == "index") return Value::integer(static_cast<int64_t>(i));
          ++n;
        }
      if (name == "index") fail("value is not in list");
      return Value::integer(n);
    });
  if (name == "copy" && self.kind() == Kind::kList)
    return Value::function("list.copy", [self](CallArgs&) { return Value::list(self.items()); });
  return Value();
}

Value unsafe_method(const Value& obj, const std::string& name) {
  // ImmutableSandboxedEnvironment refuses these; transformers' renders fail the same way.
  std::string msg = "access to attribute '" + name + "' of '" + obj.type_name() +
                    "' object is unsafe (transformers renders chat templates in an immutable sandbox)";
  return Value::function(obj.type_name() + "." + name, [msg](CallArgs&) -> Value { fail(msg); });
}

}  // namespace

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Kind::kUndefined: undefined_error(obj);
    case Kind::kString: return string_method(obj, name);
    case Kind::kDict: {
      if (is_mutating_method(obj, name)) return unsafe_method(obj, name);
      Value m = dict_method(obj, name);
      if (!m.is_undefined()) return m;
      if (const Value* v = obj.dict_ref().find(name)) return *v;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    }
    case Kind::kNamespace: {
      if (const Value* v = obj.namespace_ref().find(name)) return *v;
      return Value::undefined("'Namespace object' has no attribute '" + name + "'");
    }
    case Kind::kList:
    case Kind::kTuple: {
      if (is_mutating_method(obj, name)) return unsafe_method(obj, name);
      Value m = list_method(obj, name);
      if (!m.is_undefined()) return m;
      return Value::undefined(object_name(obj) + " has no attribute '" + name + "'");
    }
    default: return Value::undefined(object_name(obj) + " has no attribute '" + name + "'");
  }
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.is_dict()) {
    if (key.is_string()) {
      if (const Value* v = obj.dict_ref().find(key.str())) return *v;
      return get_attr(obj, key.str()).is_function() ? get_attr(obj, key.str())
                                                       : Value::undefined("'dict object' has no attribute '" + key.str() + "'");
    }
    return Value::undefined("'dict object' has no attribute " + key.repr());
  }
  if ((obj.is_sequence() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    if (obj.is_string()) {
      const std::string& s = obj.str();
      if (is_ascii(s)) {
        int64_t n = static_cast<int64_t>(s.size()), i = norm_index(key.as_int(), n);
        if (i < 0 || i >= n) return Value::undefined("string index out of range");
        return Value::string(std::string(1, s[static_cast<size_t>(i)]));
      }
      std::u32string u = decode_utf8(s);
      int64_t n = static_cast<int64_t>(u.size()), i = norm_index(key.as_int(), n);
      if (i < 0 || i >= n) return Value::undefined("string index out of range");
      return Value::string(encode_utf8(std::u32string_view(u).substr(static_cast<size_t>(i), 1)));
    }
    const List& l = obj.items();
    int64_t n = static_cast<int64_t>(l.size()), i = norm_index(key.as_int(), n);
    if (i < 0 || i >= n) return Value::undefined(obj.type_name() + " index out of range");
    return l[static_cast<size_t>(i)];
  }
  if (key.is_string()) return get_attr(obj, key.str());
  return Value::undefined(object_name(obj) + " has no attribute " + key.repr());
}

Value slice_value(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) undefined_error(obj);
  auto bound = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) fail(std::string("slice ") + what + " must be an integer or None");
    return v.as_int();
  };
  std::optional<int64_t> start = bound(start_v, "start"), stop = bound(stop_v, "stop"), stepo = bound(step_v, "step");
  int64_t step = stepo.value_or(1);
  if (step == 0) fail("slice step cannot be zero");
  if (!obj.is_string() && !obj.is_sequence()) return Value::undefined(object_name(obj) + " is not subscriptable");
  std::u32string u;
  int64_t n;
  if (obj.is_string()) {
    u = decode_utf8(obj.str());
    n = static_cast<int64_t>(u.size());
  } else {
    n = static_cast<int64_t>(obj.items().size());
  }
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= n) {
      x = step < 0 ? n - 1 : n;
    }
    return x;
  };
  int64_t b = adjust(start, step < 0 ? n - 1 : 0), e = adjust(stop, step < 0 ? -1 : n);
  std::vector<size_t> idx;
  if (step > 0)
    for (int64_t i = b; i < e; i += step) idx.push_back(static_cast<size_t>(i));
  else
    for (int64_t i = b; i > e; i += step) idx.push_back(static_cast<size_t>(i));
  if (obj.is_string()) {
    std::u32string r;
    for (size_t i : idx) r.push_back(u[i]);
    return Value::string(encode_utf8(r));
  }
  List r;
  for (size_t i : idx) r.push_back(obj.items()[i]);
  return obj.kind() == Kind::kTuple ? Value::tuple(std::move(r)) : Value::list(std::move(r));
}

List iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return {};
    case Kind::kList:
    case Kind::kTuple: return v.items();
    case Kind::kDict: {
      List keys;
      for (auto& kv : v.dict_ref().items) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Kind::kString: {
      List chars;
      for (char32_t c : decode_utf8(v.str())) {
        std::string s;
        append_utf8(s, c);
        chars.push_back(Value::string(std::move(s)));
      }
      return chars;
    }
    default: fail("'" + v.type_name() + "' object is not iterable");
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::kUndefined: return false;
    case Kind::kString:
      if (item.is_undefined()) undefined_error(item);
      if (!item.is_string()) fail("'in <string>' requires string as left operand, not " + item.type_name());
      return container.str().find(item.str()) != std::string::npos;
    case Kind::kList:
    case Kind::kTuple:
      for (auto& x : container.items())
        if (values_equal(x, item)) return true;
      return false;
    case Kind::kDict: return item.is_string() && container.dict_ref().find(item.str()) != nullptr;
    default: fail("argument of type '" + container.type_name() + "' is not iterable");
  }
}

Value call_value(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) undefined_error(callee);
  if (!callee.is_function()) fail("'" + callee.type_name() + "' object is not callable");
  return callee.fn().call(args);
}

}  // namespace nibble::tpl

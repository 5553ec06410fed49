// Jinja2's built-in filters and tests as chat templates use them, plus transformers' own
// `tojson` (json.dumps with ensure_ascii=False and its indent/separators/sort_keys options).
#include <algorithm>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "template/builtins.h"
#include "template/parser.h"
#include "template/text.h"

namespace nibble::tpl {
namespace {

using FilterFn = std::function<Value(const Value&, CallArgs&)>;
using TestFn = std::function<bool(const Value&, CallArgs&)>;

const Value& need(const CallArgs& a, size_t i, std::string_view name, const char* filter) {
  const Value* v = arg_at(a, i, name);
  if (!v) fail(std::string(filter) + ": missing argument '" + std::string(name) + "'");
  return *v;
}

// Jinja's environment.getitem along a dotted path ("function.name", "0"), for map/sort/...
Value attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (true) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit) && part.size() < 18;
    cur = cur.is_undefined() ? cur : get_item(cur, digits ? Value::integer(std::stoll(part)) : Value::string(part));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

// Sort key: Jinja lower-cases strings unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(py_lower(v.str()));
  return v;
}

std::string jinja_title(const std::string& s) {
  // Words start after '-', whitespace or an opening bracket (Jinja's _word_beginning_split_re).
  std::string out;
  bool start = true;
  for (char32_t c : decode_utf8(s)) {
    bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_py_space(c);
    if (sep) {
      append_utf8(out, c);
      start = true;
      continue;
    }
    char32_t m = c;
    if (c < 0x80) m = start ? static_cast<char32_t>(std::toupper(static_cast<int>(c))) : static_cast<char32_t>(std::tolower(static_cast<int>(c)));
    append_utf8(out, m);
    start = false;
  }
  return out;
}

// Python's \w beyond ASCII, approximately: letters and digits of every script, but not
// combining marks, punctuation, symbols or emoji.
bool is_word_char(char32_t c) {
  if (is_py_space(c)) return false;
  if (c < 0xC0) return c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA;
  if (c == 0xD7 || c == 0xF7) return false;
  if (c >= 0x300 && c <= 0x36F) return false;
  if (c >= 0x2000 && c <= 0x2BFF) return false;
  if (c >= 0x3000 && c <= 0x303F) return false;
  if (c >= 0xFE00 && c <= 0xFE0F) return false;
  if (c >= 0xFF00 && c <= 0xFF0F) return false;
  if (c >= 0x1F000) return false;
  return true;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value do_tojson(const Value& v, CallArgs& a) {
  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  bool ensure_ascii = arg_bool(a, 0, "ensure_ascii", false);
  const Value* indent_v = arg_at(a, 1, "indent");
  const Value* seps = arg_at(a, 2, "separators");
  bool sort_keys = arg_bool(a, 3, "sort_keys", false);
  std::string indent_str;
  const std::string* indent = nullptr;
  if (indent_v && !indent_v->is_none()) {
    if (indent_v->is_string()) indent_str = indent_v->str();
    else if (indent_v->is_int() || indent_v->is_bool()) indent_str.assign(static_cast<size_t>(std::clamp<int64_t>(indent_v->as_int(), 0, 64)), ' ');
    else fail("tojson: indent must be an int or a string");
    indent = &indent_str;
  }
  std::string item_sep = indent ? "," : ", ", key_sep = ": ";
  if (seps && !seps->is_none()) {
    List s = iterate(*seps);
    if (s.size() != 2 || !s[0].is_string() || !s[1].is_string()) fail("tojson: separators must be a pair of strings");
    item_sep = s[0].str();
    key_sep = s[1].str();
  }
  std::string out;
  v.dump_json(out, ensure_ascii, indent, item_sep, key_sep, sort_keys);
  return Value::string(std::move(out));
}

Value do_indent(const Value& v, CallArgs& a) {
  const Value* w = arg_at(a, 0, "width");
  std::string ind = w && w->is_string() ? w->str() : std::string(static_cast<size_t>(std::clamp<int64_t>(w ? w->as_int() : 4, 0, 1024)), ' ');
  bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
  // Jinja appends "\n" before splitlines() so that a trailing newline is kept.
  CallArgs none;
  Value lines_v = call_value(get_attr(Value::string(v.to_str() + "\n"), "splitlines"), none);
  const List& lines = lines_v.items();
  std::string rv;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i].str();
    if (i) rv += '\n';
    if (i && (blank || !line.empty())) rv += ind;
    rv += line;
    if (rv.size() > kMaxBuiltSize) fail("string too large");
  }
  if (first) rv = ind + rv;
  return Value::string(std::move(rv));
}

Value do_round(const Value& v, CallArgs& a) {
  int64_t precision = arg_int(a, 0, "precision", 0);
  std::string method = arg_str(a, 1, "method", "common");
  if (!v.is_number()) fail("round: expected a number, got " + v.type_name());
  double x = v.as_float(), p = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, -300, 300)));
  double r;
  if (method == "common") {
    // Python's round(): the exact binary value rounded to `precision` decimals, ties to even.
    // printf does exactly that for non-negative precision.
    if (precision >= 0 && std::isfinite(x)) {
      char buf[1024];
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::min<int64_t>(precision, 300)), x);
      r = std::strtod(buf, nullptr);
    } else {
      r = std::nearbyint(x * p) / p;
    }
  }
  else if (method == "floor") r = std::floor(x * p) / p;
  else if (method == "ceil") r = std::ceil(x * p) / p;
  else fail("method must be common, ceil or floor");
  return Value::number(r);
}

Value do_int(const Value& v, CallArgs& a) {
  int64_t dflt = arg_int(a, 0, "default", 0);
  if (v.is_undefined()) fail(v.str());  // int(Undefined) raises in Jinja
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_float()) || std::fabs(v.as_float()) > 9.2e18) return Value::integer(dflt);
    return Value::integer(static_cast<int64_t>(v.as_float()));
  }
  if (v.is_string()) {
    std::string s = py_strip(v.str(), std::nullopt, true, true);
    errno = 0;
    char* end = nullptr;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == '\0' && errno == 0) return Value::integer(i);
    double d = std::strtod(s.c_str(), &end);  // Jinja falls back to int(float(s))
    if (!s.empty() && *end == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(static_cast<int64_t>(d));
  }
  return Value::integer(dflt);
}

Value do_float(const Value& v, CallArgs& a) {
  const Value* d = arg_at(a, 0, "default");
  if (v.is_undefined()) fail(v.str());
  if (v.is_number()) return Value::number(v.as_float());
  if (v.is_string()) {
    std::string s = py_strip(v.str(), std::nullopt, true, true);
    char* end = nullptr;
    double x = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == '\0') return Value::number(x);
  }
  return d ? *d : Value::number(0.0);
}

Value do_sort(const Value& v, CallArgs& a, bool unique) {
  bool reverse = unique ? false : arg_bool(a, 0, "reverse", false);
  bool cs = arg_bool(a, unique ? 0 : 1, "case_sensitive", false);
  const Value* attr = arg_at(a, unique ? 1 : 2, "attribute");
  List items = iterate(v);
  auto key = [&](const Value& x) { return sort_key(attr && !attr->is_none() ? attribute_path(x, attr->to_str()) : x, cs); };
  if (unique) {
    List out, seen;
    for (auto& x : items) {
      Value k = key(x);
      bool dup = false;
      for (auto& s : seen) dup |= values_equal(s, k);
      if (!dup) {
        seen.push_back(k);
        out.push_back(x);
      }
    }
    return Value::list(std::move(out));
  }
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& x : items) keyed.emplace_back(key(x), x);
  std::stable_sort(keyed.begin(), keyed.end(), [&](auto& l, auto& r) {
    return reverse ? compare_values(r.first, l.first) < 0 : compare_values(l.first, r.first) < 0;
  });
  List out;
  for (auto& kv : keyed) out.push_back(kv.second);
  return Value::list(std::move(out));
}

// select / reject / selectattr / rejectattr
Value do_select(const Value& v, CallArgs& a, bool attr, bool keep) {
  List out;
  size_t first = 0;
  std::string attr_name;
  if (attr) attr_name = need(a, first++, "attribute", "selectattr").to_str();
  std::string test;
  if (first < a.positional.size()) test = a.positional[first++].to_str();
  CallArgs test_args;
  test_args.positional.assign(a.positional.begin() + static_cast<long>(std::min(first, a.positional.size())), a.positional.end());
  if (!test.empty() && !is_known_test(test)) fail_unsupported("unsupported test '" + test + "'");
  for (auto& x : iterate(v)) {
    Value subject = attr ? attribute_path(x, attr_name) : x;
    bool ok = test.empty() ? subject.truthy() : apply_test(test, subject, test_args);
    if (ok == keep) out.push_back(x);
  }
  return Value::list(std::move(out));
}

Value do_map(const Value& v, CallArgs& a) {
  List out;
  if (const Value* attr = a.kwarg("attribute")) {
    const Value* dflt = a.kwarg("default");
    for (auto& x : iterate(v)) {
      Value r = attribute_path(x, attr->to_str());
      out.push_back(r.is_undefined() && dflt ? *dflt : r);
    }
    return Value::list(std::move(out));
  }
  if (a.positional.empty()) fail("map: requires a filter name or attribute=");
  std::string name = a.positional[0].to_str();
  if (!is_known_filter(name)) fail_unsupported("unsupported filter '" + name + "'");
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (auto& x : iterate(v)) {
    CallArgs copy = rest;
    out.push_back(apply_filter(name, x, copy));
  }
  return Value::list(std::move(out));
}

Value join_values(const Value& v, CallArgs& a) {
  std::string sep = arg_str(a, 0, "d", "");
  const Value* attr = arg_at(a, 1, "attribute");
  std::string out;
  bool first = true;
  for (auto& x : iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += (attr && !attr->is_none() ? attribute_path(x, attr->to_str()) : x).to_str();
    if (out.size() > kMaxBuiltSize) fail("string too large");
  }
  return Value::string(std::move(out));
}

Value min_max(const Value& v, CallArgs& a, bool want_max) {
  bool cs = arg_bool(a, 0, "case_sensitive", false);
  const Value* attr = arg_at(a, 1, "attribute");
  List items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  auto key = [&](const Value& x) { return sort_key(attr && !attr->is_none() ? attribute_path(x, attr->to_str()) : x, cs); };
  for (size_t i = 1; i < items.size(); ++i) {
    int c = compare_values(key(items[i]), key(items[best]));
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = [] {
    std::unordered_map<std::string, FilterFn> f;
    f["tojson"] = do_tojson;
    f["trim"] = [](const Value& v, CallArgs& a) {
      return Value::string(py_strip(v.to_str(), a.positional.empty() ? std::nullopt : std::optional(a.positional[0].to_str()), true, true));
    };
    f["length"] = f["count"] = [](const Value& v, CallArgs&) -> Value {
      switch (v.kind()) {
        case Kind::kUndefined: return Value::integer(0);
        case Kind::kString: return Value::integer(static_cast<int64_t>(count_code_points(v.str())));
        case Kind::kList:
        case Kind::kTuple: return Value::integer(static_cast<int64_t>(v.items().size()));
        case Kind::kDict: return Value::integer(static_cast<int64_t>(v.dict_ref().items.size()));
        default: fail("object of type '" + v.type_name() + "' has no len()");
      }
    };
    f["items"] = [](const Value& v, CallArgs&) -> Value {
      if (v.is_undefined()) return Value::list({});
      if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
      CallArgs none;
      return call_value(get_attr(v, "items"), none);
    };
    f["default"] = f["d"] = [](const Value& v, CallArgs& a) -> Value {
      bool boolean = arg_bool(a, 1, "boolean", false);
      if (v.is_undefined() || (boolean && !v.truthy())) {
        const Value* d = arg_at(a, 0, "default_value");
        return d ? *d : Value::string("");
      }
      return v;
    };
    f["upper"] = [](const Value& v, CallArgs&) { return Value::string(py_upper(v.to_str())); };
    f["lower"] = [](const Value& v, CallArgs&) { return Value::string(py_lower(v.to_str())); };
    f["capitalize"] = [](const Value& v, CallArgs&) { return Value::string(py_capitalize(v.to_str())); };
    f["title"] = [](const Value& v, CallArgs&) { return Value::string(jinja_title(v.to_str())); };
    f["replace"] = [](const Value& v, CallArgs& a) {
      std::string out = py_replace(v.to_str(), need(a, 0, "old", "replace").to_str(), need(a, 1, "new", "replace").to_str(),
                                   arg_int(a, 2, "count", -1));
      if (out.size() > kMaxBuiltSize) fail("string too large");
      return Value::string(std::move(out));
    };
    f["join"] = join_values;
    f["first"] = [](const Value& v, CallArgs&) {
      List l = iterate(v);
      return l.empty() ? Value::undefined("No first item, sequence was empty.") : l.front();
    };
    f["last"] = [](const Value& v, CallArgs&) {
      List l = iterate(v);
      return l.empty() ? Value::undefined("No last item, sequence was empty.") : l.back();
    };
    f["list"] = [](const Value& v, CallArgs&) { return Value::list(iterate(v)); };
    f["string"] = [](const Value& v, CallArgs&) { return v.is_string() ? v : Value::string(v.to_str()); };
    f["int"] = do_int;
    f["float"] = do_float;
    f["abs"] = [](const Value& v, CallArgs&) -> Value {
      if (v.is_float()) return Value::number(std::fabs(v.as_float()));
      if (!v.is_number()) fail("bad operand type for abs(): '" + v.type_name() + "'");
      if (v.as_int() == INT64_MIN) fail_unsupported("unsupported integer overflow in abs");
      return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
    };
    f["round"] = do_round;
    f["sort"] = [](const Value& v, CallArgs& a) { return do_sort(v, a, false); };
    f["unique"] = [](const Value& v, CallArgs& a) { return do_sort(v, a, true); };
    f["reverse"] = [](const Value& v, CallArgs&) -> Value {
      if (v.is_string()) {
        std::u32string u = decode_utf8(v.str());
        std::reverse(u.begin(), u.end());
        return Value::string(encode_utf8(u));
      }
      List l = iterate(v);
      std::reverse(l.begin(), l.end());
      return Value::list(std::move(l));
    };
    f["map"] = do_map;
    f["select"] = [](const Value& v, CallArgs& a) { return do_select(v, a, false, true); };
    f["reject"] = [](const Value& v, CallArgs& a) { return do_select(v, a, false, false); };
    f["selectattr"] = [](const Value& v, CallArgs& a) { return do_select(v, a, true, true); };
    f["rejectattr"] = [](const Value& v, CallArgs& a) { return do_select(v, a, true, false); };
    f["indent"] = do_indent;
    // Autoescape is off in transformers' environment, so `safe` changes nothing visible.
    f["safe"] = [](const Value& v, CallArgs&) { return v; };
    f["e"] = f["escape"] = f["forceescape"] = [](const Value& v, CallArgs&) { return Value::string(html_escape(v.to_str())); };
    f["wordcount"] = [](const Value& v, CallArgs&) {
      int64_t n = 0;
      bool in_word = false;
      for (char32_t c : decode_utf8(v.to_str())) {
        // \w: letters, digits, underscore; non-ASCII counted as word characters except spaces.
        bool w = c < 0x80 ? (std::isalnum(static_cast<int>(c)) || c == '_') : is_word_char(c);
        if (w && !in_word) ++n;
        in_word = w;
      }
      return Value::integer(n);
    };
    f["dictsort"] = [](const Value& v, CallArgs& a) -> Value {
      if (!v.is_dict()) fail("dictsort: expected a mapping");
      bool cs = arg_bool(a, 0, "case_sensitive", false);
      std::string by = arg_str(a, 1, "by", "key");
      bool reverse = arg_bool(a, 2, "reverse", false);
      if (by != "key" && by != "value") fail("You can only sort by either 'key' or 'value'");
      std::vector<std::pair<std::string, Value>> items = v.dict_ref().items;
      std::stable_sort(items.begin(), items.end(), [&](auto& l, auto& r) {
        Value kl = sort_key(by == "key" ? Value::string(l.first) : l.second, cs);
        Value kr = sort_key(by == "key" ? Value::string(r.first) : r.second, cs);
        return reverse ? compare_values(kr, kl) < 0 : compare_values(kl, kr) < 0;
      });
      List out;
      for (auto& kv : items) out.push_back(Value::tuple({Value::string(kv.first), kv.second}));
      return Value::list(std::move(out));
    };
    f["sum"] = [](const Value& v, CallArgs& a) -> Value {
      const Value* attr = arg_at(a, 0, "attribute");
      const Value* start = arg_at(a, 1, "start");
      Value total = start ? *start : Value::integer(0);
      for (auto& x : iterate(v)) total = binary_op("+", total, attr && !attr->is_none() ? attribute_path(x, attr->to_str()) : x);
      return total;
    };
    f["min"] = [](const Value& v, CallArgs& a) { return min_max(v, a, false); };
    f["max"] = [](const Value& v, CallArgs& a) { return min_max(v, a, true); };
    f["format"] = [](const Value& v, CallArgs& a) {
      if (!a.keyword.empty()) fail_unsupported("unsupported keyword arguments to the format filter");
      Value args = a.positional.size() == 1 ? a.positional[0] : Value::tuple(a.positional);
      if (a.positional.size() == 1 && a.positional[0].kind() == Kind::kTuple) args = Value::tuple({a.positional[0]});
      return Value::string(percent_format(v.to_str(), args));
    };
    f["center"] = [](const Value& v, CallArgs& a) {
      std::string s = v.to_str();
      int64_t width = std::min<int64_t>(arg_int(a, 0, "width", 80), 1 << 20);
      int64_t n = static_cast<int64_t>(count_code_points(s));
      if (width <= n) return Value::string(s);
      int64_t pad = width - n, left = pad / 2 + (pad & width & 1);  // Python's str.center split
      return Value::string(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(pad - left), ' '));
    };
    f["attr"] = [](const Value& v, CallArgs& a) { return get_attr(v, need(a, 0, "name", "attr").to_str()); };
    return f;
  }();
  return table;
}

bool test_lower_upper(const Value& v, bool upper) {
  if (!v.is_string()) return false;
  CallArgs none;
  return call_value(get_attr(v, upper ? "isupper" : "islower"), none).truthy();
}

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> table = [] {
    std::unordered_map<std::string, TestFn> t;
    t["defined"] = [](const Value& v, CallArgs&) { return !v.is_undefined(); };
    t["undefined"] = [](const Value& v, CallArgs&) { return v.is_undefined(); };
    t["none"] = [](const Value& v, CallArgs&) { return v.is_none(); };
    t["string"] = [](const Value& v, CallArgs&) { return v.is_string(); };
    t["number"] = [](const Value& v, CallArgs&) { return v.is_number(); };  // bool is a Number in Python
    t["integer"] = [](const Value& v, CallArgs&) { return v.is_int(); };
    t["float"] = [](const Value& v, CallArgs&) { return v.is_float(); };
    t["boolean"] = [](const Value& v, CallArgs&) { return v.is_bool(); };
    t["true"] = [](const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); };
    t["false"] = [](const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); };
    t["mapping"] = [](const Value& v, CallArgs&) { return v.is_dict(); };
    // Undefined has __iter__, __len__ and __getitem__, so it passes both of these.
    t["iterable"] = [](const Value& v, CallArgs&) { return v.is_undefined() || v.is_string() || v.is_sequence() || v.is_dict(); };
    t["sequence"] = [](const Value& v, CallArgs&) { return v.is_undefined() || v.is_string() || v.is_sequence() || v.is_dict(); };
    t["callable"] = [](const Value& v, CallArgs&) { return v.is_function(); };
    t["odd"] = [](const Value& v, CallArgs&) {
      if (!v.is_number() || v.is_float()) fail("odd: expected an integer");
      return (v.as_int() & 1) != 0;
    };
    t["even"] = [](const Value& v, CallArgs&) {
      if (!v.is_number() || v.is_float()) fail("even: expected an integer");
      return (v.as_int() & 1) == 0;
    };
    t["divisibleby"] = [](const Value& v, CallArgs& a) {
      const Value& n = need(a, 0, "num", "divisibleby");
      if (!v.is_number() || !n.is_number()) fail("divisibleby: expected numbers");
      if (n.as_float() == 0) fail("integer division or modulo by zero");
      return binary_op("%", v, n).as_float() == 0;
    };
    t["eq"] = t["equalto"] = t["=="] = [](const Value& v, CallArgs& a) { return values_equal(v, need(a, 0, "other", "eq")); };
    t["ne"] = t["!="] = [](const Value& v, CallArgs& a) { return !values_equal(v, need(a, 0, "other", "ne")); };
    t["lt"] = t["lessthan"] = t["<"] = [](const Value& v, CallArgs& a) { return compare_values(v, need(a, 0, "other", "lt")) < 0; };
    t["le"] = t["<="] = [](const Value& v, CallArgs& a) { return compare_values(v, need(a, 0, "other", "le")) <= 0; };
    t["gt"] = t["greaterthan"] = t[">"] = [](const Value& v, CallArgs& a) { return compare_values(v, need(a, 0, "other", "gt")) > 0; };
    t["ge"] = t[">="] = [](const Value& v, CallArgs& a) { return compare_values(v, need(a, 0, "other", "ge")) >= 0; };
    t["in"] = [](const Value& v, CallArgs& a) { return contains(need(a, 0, "seq", "in"), v); };
    t["sameas"] = [](const Value& v, CallArgs& a) {
      // Python identity: singletons compare by value, everything else by object.
      const Value& o = need(a, 0, "other", "sameas");
      if (v.is_none() || v.is_bool() || v.is_undefined()) return v.kind() == o.kind() && values_equal(v, o);
      return false;
    };
    t["lower"] = [](const Value& v, CallArgs&) { return test_lower_upper(v, false); };
    t["upper"] = [](const Value& v, CallArgs&) { return test_lower_upper(v, true); };
    t["escaped"] = [](const Value&, CallArgs&) { return false; };
    t["filter"] = [](const Value& v, CallArgs&) { return v.is_string() && is_known_filter(v.str()); };
    t["test"] = [](const Value& v, CallArgs&) { return v.is_string() && is_known_test(v.str()); };
    return t;
  }();
  return table;
}

}  // namespace

bool is_known_filter(std::string_view name) { return filters().count(std::string(name)) > 0; }
bool is_known_test(std::string_view name) { return tests().count(std::string(name)) > 0; }

Value apply_filter(const std::string& name, const Value& v, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) fail_unsupported("unsupported filter '" + name + "'");
  return it->second(v, args);
}

bool apply_test(const std::string& name, const Value& v, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) fail_unsupported("unsupported test '" + name + "'");
  return it->second(v, args);
}

}  // namespace nibble::tpl

// Python's binary operators on template values, "%"-formatting, and the global functions
// transformers and Jinja put in every chat template's scope.
#include <cmath>
#include <ctime>

#include "template/builtins.h"
#include "template/text.h"

namespace nibble::tpl {
namespace {

[[noreturn]] void type_error(const std::string& op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
}

Value repeat(const Value& seq, int64_t n) {
  const size_t unit = seq.is_string() ? seq.str().size() : seq.items().size();
  // An empty sequence stays empty however large n is (Python: "" * 10**10 is instant): without this
  // the loops below ran n times doing nothing (the chat-template fuzzer found a 20 s render).
  if (n <= 0 || unit == 0)
    return seq.is_string() ? Value::string("") : seq.kind() == Kind::kTuple ? Value::tuple({}) : Value::list({});
  if (static_cast<uint64_t>(n) > kMaxBuiltSize / unit) fail("repetition result too large");
  if (seq.is_string()) {
    std::string out;
    out.reserve(unit * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(std::move(out));
  }
  List out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.kind() == Kind::kTuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

// Python floor division and modulo take the sign of the divisor.
double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

}  // namespace

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = a.to_str() + b.to_str();
    if (s.size() > kMaxBuiltSize) fail("string too large");
    return Value::string(std::move(s));
  }
  // jinja2.Undefined fails every arithmetic operator.
  if (a.is_undefined()) fail(a.str().empty() ? "value is undefined" : a.str());
  if (b.is_undefined()) fail(b.str().empty() ? "value is undefined" : b.str());
  if (op == "%" && a.is_string()) return Value::string(percent_format(a.str(), b));
  if (op == "*") {
    if ((a.is_string() || a.is_sequence()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_sequence()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      if (a.str().size() + b.str().size() > kMaxBuiltSize) fail("string too large");
      return Value::string(a.str() + b.str());
    }
    if (a.is_sequence() && a.kind() == b.kind()) {
      if (a.items().size() + b.items().size() > kMaxBuiltSize / 64) fail("list too large");
      List out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return a.kind() == Kind::kTuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
    }
  }
  if (!a.is_number() || !b.is_number()) type_error(op, a, b);
  bool fl = a.is_float() || b.is_float();
  if (op == "/") {
    if (b.as_float() == 0) fail("division by zero");
    return Value::number(a.as_float() / b.as_float());
  }
  if (op == "**") {
    if (!fl && b.as_int() >= 0) {
      // Exact integer power while it fits; Python would go on with big integers.
      int64_t base = a.as_int(), e = b.as_int(), r = 1;
      for (int64_t i = 0; i < e; ++i) {
        if (__builtin_mul_overflow(r, base, &r)) fail_unsupported("unsupported integer overflow in '**'");
        if (r == 0 || r == 1) break;
      }
      if (r == 1 && base == -1 && (e % 2)) r = -1;
      return Value::integer(r);
    }
    if (a.as_float() == 0 && b.as_float() < 0) fail("0.0 cannot be raised to a negative power");
    return Value::number(std::pow(a.as_float(), b.as_float()));
  }
  if (fl) {
    double x = a.as_float(), y = b.as_float();
    if (op == "+") return Value::number(x + y);
    if (op == "-") return Value::number(x - y);
    if (op == "*") return Value::number(x * y);
    if (y == 0 && (op == "//" || op == "%")) fail("float division by zero");
    if (op == "//") return Value::number(std::floor(x / y));
    if (op == "%") return Value::number(py_fmod(x, y));
  } else {
    int64_t x = a.as_int(), y = b.as_int(), r;
    bool overflow = false;
    if (op == "+") overflow = __builtin_add_overflow(x, y, &r);
    else if (op == "-") overflow = __builtin_sub_overflow(x, y, &r);
    else if (op == "*") overflow = __builtin_mul_overflow(x, y, &r);
    else {
      if (y == 0) fail("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) fail_unsupported("unsupported integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      r = op == "//" ? q : m;
    }
    if (overflow) fail_unsupported("unsupported integer overflow in '" + op + "'");
    return Value::integer(r);
  }
  type_error(op, a, b);
}

std::string percent_format(const std::string& fmt, const Value& args) {
  List vals = args.kind() == Kind::kTuple ? args.items() : List{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    if (++i >= fmt.size()) fail("incomplete format");
    char c = fmt[i];
    if (c == '%') {
      out += '%';
      continue;
    }
    if (next >= vals.size()) fail("not enough arguments for format string");
    const Value& v = vals[next++];
    if (c == 's') out += v.to_str();
    else if (c == 'r') out += v.repr();
    else if (c == 'd' || c == 'i') {
      if (!v.is_number()) fail("%d format: a real number is required, not " + v.type_name());
      out += std::to_string(v.is_float() ? static_cast<int64_t>(std::trunc(v.as_float())) : v.as_int());
    } else if (c == 'f') {
      if (!v.is_number()) fail("%f format: a real number is required, not " + v.type_name());
      char buf[64];
      std::snprintf(buf, sizeof buf, "%f", v.as_float());
      out += buf;
    } else {
      fail_unsupported(std::string("unsupported format character '") + c + "' in '%' formatting");
    }
  }
  // Python: arguments left over are an error unless the argument is a list or a dict (those are
  // taken as a mapping, as any object with __getitem__ is).
  const bool mapping_like = args.kind() == Kind::kList || args.kind() == Kind::kDict;
  if (next < vals.size() && !mapping_like) fail("not all arguments converted during string formatting");
  return out;
}

void add_globals(Dict& g, std::optional<std::time_t> now, std::vector<Value>* namespaces) {
  g.set("raise_exception", Value::function("raise_exception", [](CallArgs& a) -> Value {
          // transformers raises jinja2.TemplateError(message): the message is the template's own.
          throw TemplateError{0, a.positional.empty() ? std::string() : a.positional[0].to_str(), false};
        }));
  g.set("namespace", Value::function("namespace", [namespaces](CallArgs& a) -> Value {
          Dict d;
          for (auto& p : a.positional) {
            if (!p.is_dict()) fail("namespace() positional argument must be a dict");
            for (auto& kv : p.dict_ref().items) d.set(kv.first, kv.second);
          }
          for (auto& [k, v] : a.keyword) d.set(k, v);
          for (auto& kv : d.items)
            if (!kv.first.empty() && kv.first[0] == '_')
              fail("chat templates cannot store underscore-prefixed attributes on a namespace");
          Value ns = Value::new_namespace(std::move(d));
          if (namespaces) namespaces->push_back(ns);
          return ns;
        }));
  g.set("dict", Value::function("dict", [](CallArgs& a) -> Value {
          Dict d;
          if (a.positional.size() > 1) fail("dict expected at most 1 argument");
          if (!a.positional.empty()) {
            const Value& p = a.positional[0];
            if (p.is_dict()) {
              d = p.dict_ref();
            } else {
              for (auto& item : iterate(p)) {
                List kv = iterate(item);
                if (kv.size() != 2 || !kv[0].is_string()) fail("dict() sequence elements must be (str, value) pairs");
                d.set(kv[0].str(), kv[1]);
              }
            }
          }
          for (auto& [k, v] : a.keyword) d.set(k, v);
          return Value::dict(std::move(d));
        }));
  g.set("range", Value::function("range", [](CallArgs& a) -> Value {
          if (a.positional.empty() || a.positional.size() > 3) fail("range expected 1 to 3 arguments");
          for (auto& v : a.positional)
            if (!v.is_int() && !v.is_bool()) fail(std::string("'") + v.type_name() + "' object cannot be interpreted as an integer");
          int64_t start = 0, stop, step = 1;
          if (a.positional.size() == 1) {
            stop = a.positional[0].as_int();
          } else {
            start = a.positional[0].as_int();
            stop = a.positional[1].as_int();
            if (a.positional.size() == 3) step = a.positional[2].as_int();
          }
          if (step == 0) fail("range() arg 3 must not be zero");
          // Jinja's sandbox refuses ranges longer than MAX_RANGE = 100000.
          long double count = step > 0 ? std::ceil((static_cast<long double>(stop) - start) / step)
                                        : std::ceil((static_cast<long double>(start) - stop) / -step);
          if (count > 100000) fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
          List out;
          for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) out.push_back(Value::integer(start + i * step));
          return Value::list(std::move(out));
        }));
  g.set("strftime_now", Value::function("strftime_now", [now](CallArgs& a) -> Value {
          if (a.positional.empty() || !a.positional[0].is_string()) fail("strftime_now expects a format string");
          std::time_t t = now ? *now : std::time(nullptr);
          std::tm tm{};
          localtime_r(&t, &tm);
          const std::string& fmt = a.positional[0].str();
          if (fmt.size() > 1024) fail("strftime_now format too long");
          std::string buf(fmt.size() * 64 + 64, '\0');
          size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
          buf.resize(n);
          return Value::string(std::move(buf));
        }));
}

}  // namespace nibble::tpl

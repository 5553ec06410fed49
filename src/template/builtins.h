// What the interpreter calls into: attribute/item access with Jinja's sandbox rules, Python's
// operators, iteration, and the filter/test/global tables. Everything throws TemplateError.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "template/value.h"

namespace nibble::tpl {

// Jinja's `obj.name` (getattr first, then item) and `obj[key]` (item first, then getattr).
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
Value slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step);

// The items a for loop (or list()) sees: a dict gives its keys, a string its characters,
// undefined nothing.
List iterate(const Value& v);
bool contains(const Value& container, const Value& item);  // Python's `item in container`
Value binary_op(const std::string& op, const Value& a, const Value& b);
Value call_value(const Value& callee, CallArgs& args);

Value apply_filter(const std::string& name, const Value& v, CallArgs& args);
bool apply_test(const std::string& name, const Value& v, CallArgs& args);

// Python's "%" string formatting (str % args and the `format` filter): %s %r %d %i %f %%.
std::string percent_format(const std::string& fmt, const Value& args);

// raise_exception, namespace, dict, range, strftime_now. `now` fixes strftime_now's clock;
// every namespace() made is also appended to *namespaces (the caller breaks cycles at the end).
void add_globals(Dict& globals, std::optional<std::time_t> now, std::vector<Value>* namespaces);

// Argument helpers shared by filters and methods: the i-th positional or the named keyword.
const Value* arg_at(const CallArgs& a, size_t i, std::string_view name);
std::string arg_str(const CallArgs& a, size_t i, std::string_view name, std::string fallback);
int64_t arg_int(const CallArgs& a, size_t i, std::string_view name, int64_t fallback);
bool arg_bool(const CallArgs& a, size_t i, std::string_view name, bool fallback);

// Caps (hostile templates): the largest string or list one operation may build.
constexpr size_t kMaxBuiltSize = size_t(64) << 20;

}  // namespace nibble::tpl

// UTF-8 and Python str helpers. Chat templates are Python programs at heart: `len`, slicing,
// `strip()` and `split()` count code points and use Python's whitespace set, and a byte-wise
// version would split multibyte characters or leave U+3000 unstripped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::tpl {

// Decodes UTF-8 into code points. Template sources are checked with valid_utf8 and JSON inputs
// are valid already; should an invalid byte slip through it decodes as itself (never a crash).
bool valid_utf8(std::string_view s);
std::u32string decode_utf8(std::string_view s);
std::string encode_utf8(std::u32string_view s);
void append_utf8(std::string& out, char32_t c);
size_t count_code_points(std::string_view s);
bool is_ascii(std::string_view s);

bool is_py_space(char32_t c);  // str.isspace()

// str.strip / lstrip / rstrip; `chars` nullopt means whitespace.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split(sep=None / sep, maxsplit)
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
// str.replace(old, new, count)
std::string py_replace(std::string_view s, std::string_view from, std::string_view to, int64_t count);

// Case mapping covers ASCII only (documented limitation: Python maps all of Unicode).
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);
std::string py_capitalize(std::string_view s);

// Python's repr() of a str: single quotes unless the text has ' and no ".
std::string py_repr_string(std::string_view s);
// json.dumps of a str with ensure_ascii as given.
void json_escape(std::string& out, std::string_view s, bool ensure_ascii);
// Python's repr() of a float ('1.0', '1e+16', 'inf', 'nan').
std::string py_float_repr(double v);

}  // namespace nibble::tpl

// Template/expected pairs produced once by real Jinja2, shared by constructs_test.cpp.
#pragma once

#include <string>
#include <vector>

namespace nibble::test {

struct ConstructCase {
  const char* category;
  std::string source;
  std::string expected;
};
struct ErrorCase {
  std::string source;
  std::string jinja_error;  // what jinja2 raised, for the reader; we only require a failure
};

// Rendered with messages = [system "sys", user "hi", assistant "yo"].
const std::vector<ConstructCase>& construct_cases();
const std::vector<ErrorCase>& runtime_error_cases();

}  // namespace nibble::test

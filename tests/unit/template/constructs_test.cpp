// Language constructs one by one (expected outputs come from Jinja2 itself, see
// construct_cases.cpp), then errors with line numbers, limits, the loader and the context.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "construct_cases.h"
#include "template/chat_template_loader.h"

namespace nibble {
namespace {

using ojson = nlohmann::ordered_json;

ojson test_context() {
  return ojson::parse(R"({"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
                                        {"role": "assistant", "content": "yo"}]})");
}

Result<std::string> render(const std::string& src, const ojson& ctx = test_context(), ChatRenderOptions opt = {}) {
  auto t = ChatTemplate::parse(src);
  if (!t) return t.status();
  return t->render(ctx, opt);
}

TEST(ChatTemplateConstructs, MatchJinja) {
  int n = 0;
  for (auto& c : test::construct_cases()) {
    SCOPED_TRACE(std::string(c.category) + ": " + c.source);
    ChatRenderOptions opt;
    opt.now = 1700000000;
    auto out = render(c.source, test_context(), opt);
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    EXPECT_EQ(out.value(), c.expected);
    ++n;
  }
  EXPECT_GE(n, 90);
}

TEST(ChatTemplateConstructs, RuntimeErrorsWhereJinjaFails) {
  for (auto& c : test::runtime_error_cases()) {
    SCOPED_TRACE(c.source + "  (jinja: " + c.jinja_error + ")");
    auto out = render(c.source);
    ASSERT_FALSE(out.is_ok()) << "rendered: " << out.value();
    EXPECT_EQ(out.status().message().rfind("chat template line ", 0), 0u) << out.status().message();
  }
}

struct LineCase {
  const char* source;
  const char* message;  // the whole Status message
  StatusCode code;
};

TEST(ChatTemplateErrors, NameTheConstructAndLine) {
  const LineCase cases[] = {
      {"line1\n{{ x | wordwrap }}", "chat template line 2: unsupported filter 'wordwrap'", StatusCode::kUnsupported},
      {"a\n\n{% include 'x' %}", "chat template line 3: unsupported statement 'include'", StatusCode::kUnsupported},
      {"{{ x is frobbed }}", "chat template line 1: unsupported test 'frobbed'", StatusCode::kUnsupported},
      {"\n{% for x in y recursive %}{% endfor %}", "chat template line 2: unsupported recursive for loop",
       StatusCode::kUnsupported},
      {"{% foo %}", "chat template line 1: unknown statement 'foo'", StatusCode::kInvalidArgument},
      {"{% if x %}\nno end", "chat template line 2: unexpected end of template, expected 'elif' or 'else' or 'endif'",
       StatusCode::kInvalidArgument},
      {"x\n{{ 'unterminated }}", "chat template line 2: unterminated string literal", StatusCode::kInvalidArgument},
      {"{% for x in y %}\n{{ x }\n{% endfor %}", "chat template line 2: unexpected '}'", StatusCode::kInvalidArgument},
      {"{# never closed", "chat template line 1: missing end of comment tag", StatusCode::kInvalidArgument},
      {"a\nb\n{{ raise_exception('bad ' ~ 1) }}", "chat template line 3: bad 1", StatusCode::kInvalidArgument},
      {"\n\n\n{{ messages.x.y }}", "chat template line 4: 'list object' has no attribute 'x'",
       StatusCode::kInvalidArgument},
      {"{{ messages.append(1) }}",
       "chat template line 1: access to attribute 'append' of 'list' object is unsafe (transformers renders chat "
       "templates in an immutable sandbox)",
       StatusCode::kInvalidArgument},
      {"{{ 'abc'.zfill(5) }}", "chat template line 1: unsupported string method 'zfill'", StatusCode::kUnsupported},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.source);
    auto out = render(c.source);
    ASSERT_FALSE(out.is_ok());
    EXPECT_EQ(out.status().message(), c.message);
    EXPECT_EQ(out.status().code(), c.code);
  }
}

TEST(ChatTemplateErrors, HostileTemplatesFailCleanly) {
  std::string deep(5000, '(');
  deep = "{{ " + deep + "1" + std::string(5000, ')') + " }}";
  std::string deep_blocks;
  for (int i = 0; i < 2000; ++i) deep_blocks += "{% if 1 %}";
  const std::string cases[] = {
      deep,
      deep_blocks,
      "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
      "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
      "{{ range(1000000) | length }}",
      "{{ 'a' * 1000000000000 }}",
      // each value under the 64 MB cap, but built again and again: the budget counts their bytes
      "{% for i in range(100000) %}{% set x = 'ab' * 30000000 %}{% endfor %}",
      "{% set ns = namespace(s='') %}{% for i in range(100000) %}{% set ns.s = ('x' * 1000000) ~ i %}{% endfor %}",
      "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}",
      "{{ 9223372036854775807 + 1 }}",
      std::string("{{ '\xff' }}"),
      "{% macro m() %}{% break %}{% endmacro %}{{ m() }}",
  };
  ChatRenderOptions opt;
  opt.max_steps = 2'000'000;
  for (auto& src : cases) {
    SCOPED_TRACE(src.substr(0, 80));
    auto out = render(src, test_context(), opt);
    EXPECT_FALSE(out.is_ok());
  }
}

TEST(ChatTemplateGlobals, StrftimeNowUsesInjectedClock) {
  ChatRenderOptions opt;
  opt.now = 1699963200;  // 2023-11-14 12:00 UTC: the same date in every time zone
  auto out = render("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d') }}", ojson::object(), opt);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(out.value(), "14 Nov 2023|2023-11-14");
}

TEST(ChatTemplateContext, DropsNullsAndAliasesReasoning) {
  ChatRequest r;
  r.messages = ojson::parse(R"([{"role": "assistant", "content": null, "reasoning": "why", "tool_calls": [1]}])");
  r.kwargs["enable_thinking"] = false;
  r.kwargs["bos_token"] = "<override>";
  ojson ctx = build_chat_context(r, ojson::parse(R"({"bos_token": "<s>", "eos_token": "</s>"})"));
  EXPECT_EQ(ctx.dump(),
            R"({"bos_token":"<override>","eos_token":"</s>","enable_thinking":false,"messages":[{"thinking":"why",)"
            R"("role":"assistant","reasoning":"why","tool_calls":[1],"reasoning_content":"why"}],"tools":null,)"
            R"("documents":null,"add_generation_prompt":false})");
}

TEST(ChatTemplateLoader, ConfigVariantsAndFiles) {
  namespace fs = std::filesystem;
  // A list of named templates; tokens as AddedToken dicts; extra_special_tokens as a dict.
  ojson config = ojson::parse(R"({
    "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "pad_token": null,
    "extra_special_tokens": {"image_token": "<img>"},
    "chat_template": [{"name": "default", "template": "D{{ bos_token }}"}, {"name": "tool_use", "template": "T"}]})");
  auto set = chat_templates_from_config(config);
  ASSERT_TRUE(set.is_ok()) << set.status().message();
  EXPECT_EQ(set->select(false).value(), "D{{ bos_token }}");
  EXPECT_EQ(set->select(true).value(), "T");
  EXPECT_EQ(set->special_tokens.dump(), R"({"bos_token":"<s>","eos_token":"</s>","image_token":"<img>"})");
  ChatRequest req;
  req.messages = ojson::parse(R"([{"role": "user", "content": "x"}])");
  EXPECT_EQ(apply_chat_template(set.value(), req).value(), "D<s>");

  // chat_template.jinja beside the config wins over the config's own template.
  fs::path dir = fs::temp_directory_path() / ("nibble_tpl_loader_" + std::to_string(::getpid()));
  fs::create_directories(dir / "additional_chat_templates");
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "old", "eos_token": "<e>"})";
  std::ofstream(dir / "chat_template.jinja") << "new{{ eos_token }}\n";
  std::ofstream(dir / "additional_chat_templates" / "tool_use.jinja") << "tools!";
  auto loaded = load_chat_templates(dir);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();
  EXPECT_EQ(loaded->select(false).value(), "new{{ eos_token }}\n");
  EXPECT_EQ(loaded->select(true).value(), "tools!");
  auto from_file = load_chat_templates(dir / "tokenizer_config.json");
  ASSERT_TRUE(from_file.is_ok());
  EXPECT_EQ(apply_chat_template(from_file.value(), req).value(), "new<e>");  // one trailing newline dropped
  fs::remove_all(dir);

  EXPECT_FALSE(load_chat_templates("/nonexistent/model").is_ok());
  EXPECT_FALSE(chat_templates_from_config(ojson::parse(R"({"chat_template": 5})")).is_ok());
}

}  // namespace
}  // namespace nibble

// libFuzzer target: any bytes as a chat template, parsed and rendered against a conversation
// that exercises messages, tool calls and tools. Must never crash, hang or leak; errors are fine.
//
// Standalone build (what was run; cmake/NibbleFuzz.cmake may wrap the same thing):
//   clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -Iinclude \
//     tests/fuzz/fuzz_chat_template.cpp src/template/*.cpp -lfmt -o fuzz_chat_template
//   ./fuzz_chat_template -max_len=4096 -timeout=10 -rss_limit_mb=2048 corpus/
// (or link the nibble_template library built with the same sanitizer flags).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "template/chat_template.h"

namespace {

const nlohmann::ordered_json& context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "bos_token": "<s>", "eos_token": "</s>", "enable_thinking": false, "add_generation_prompt": true,
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Hi \"there\" é 🦙\n<think>x</think>"},
      {"role": "assistant", "content": "", "reasoning_content": "hmm", "tool_calls": [
        {"id": "abcdefghi", "type": "function", "function": {"name": "f", "arguments": {"a": 1, "b": [1.5, null, true]}}}]},
      {"role": "tool", "tool_call_id": "abcdefghi", "content": "{\"ok\": 1}"},
      {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image"}]}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
               "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
    "documents": null})");
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view source(reinterpret_cast<const char*>(data), size);
  auto tpl = nibble::ChatTemplate::parse(source);
  if (!tpl.is_ok()) return 0;
  nibble::ChatRenderOptions opt;
  opt.now = 1699963200;
  // Small budgets keep each input fast; the limits themselves are what is being tested.
  opt.max_steps = 200'000;
  opt.max_output = 1 << 20;
  auto out = tpl->render(context(), opt);
  (void)out;
  return 0;
}

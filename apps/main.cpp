// nibble: the command-line front door. Each subcommand lives in apps/cmd_<name>.cpp.
#include <algorithm>
#include <cstdio>

#include "command.h"

namespace nibble::app {

std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> commands;
  return commands;
}

int report_error(const Status& s) {
  std::fprintf(stderr, "nibble: %s\n", s.message().c_str());
  return s.code() == StatusCode::kInternal ? 70 : 1;
}

}  // namespace nibble::app

int main(int argc, char** argv) {
  using namespace nibble::app;
  CLI::App app{"nibble: LLM inference in C++ and CUDA, 4-bit weights at the speed of the memory bus"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "nibble 0.1.0");

  auto& commands = command_registry();
  std::sort(commands.begin(), commands.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::function<int()> action;
  for (auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    auto run = std::make_shared<std::function<int()>>();
    *run = c.setup(*sub);
    sub->callback([run, &action] { action = *run; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return action ? action() : 0;
}

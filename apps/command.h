// Subcommands of `nibble` register themselves from their own files (apps/cmd_*.cpp), so that
// adding one never touches main.cpp.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/status.h"

namespace nibble::app {

struct CommandSpec {
  std::string name;
  std::string help;
  // Adds options to `sub` and returns the function to run once they are parsed. The function
  // returns the process exit code.
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

std::vector<CommandSpec>& command_registry();

inline bool register_command(CommandSpec spec) {
  command_registry().push_back(std::move(spec));
  return true;
}

// Prints "nibble: <message>" on stderr and returns the exit code for a failed Status.
int report_error(const Status& s);

}  // namespace nibble::app

#include "core/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace nibble {

LogLevel log_level() {
  static const LogLevel level = [] {
    const char* env = std::getenv("NIBBLE_LOG");
    if (!env) return LogLevel::kWarn;
    if (!std::strcmp(env, "debug")) return LogLevel::kDebug;
    if (!std::strcmp(env, "info")) return LogLevel::kInfo;
    if (!std::strcmp(env, "error")) return LogLevel::kError;
    return LogLevel::kWarn;
  }();
  return level;
}

void log_write(LogLevel level, const std::string& msg) {
  static const char* names[] = {"debug", "info", "warn", "error"};
  std::fprintf(stderr, "nibble %s: %s\n", names[static_cast<int>(level)], msg.c_str());
}

}  // namespace nibble

// Logging sink: one line per call, prefixed with the level, written atomically to stderr.
#include "base/log.h"

#include <atomic>
#include <cstdio>

namespace strata {
namespace {
std::atomic<int> g_level{int(LogLevel::kWarn)};
}
void set_log_level(LogLevel level) { g_level = int(level); }
LogLevel log_level() { return LogLevel(g_level.load()); }
void log_line(LogLevel level, const std::string& msg) {
    static constexpr const char* prefix[] = {"debug", "info", "warning", "error", ""};
    std::string line = fmt::format("strata: {}: {}\n", prefix[int(level)], msg);
    std::fwrite(line.data(), 1, line.size(), stderr);
}
}  // namespace strata

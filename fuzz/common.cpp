// Shared pieces of the fuzz harnesses: the registry used by the replay test, repository
// paths, and the invariant-failure report.
#include "fuzz.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "base/log.h"

namespace strata::fuzz {

namespace {
// Parsers warn about odd-but-accepted input; millions of inputs would flood the log.
const bool g_quiet = (set_log_level(LogLevel::kSilent), true);

std::vector<Target>& registry() {
    static std::vector<Target> r;
    return r;
}
}  // namespace

Registration::Registration(const char* name, Entry entry) { registry().push_back({name, entry}); }

const Target* targets(size_t* n) {
    *n = registry().size();
    return registry().data();
}

std::string source_path(std::string_view rel) {
    const char* env = std::getenv("STRATA_SOURCE_DIR");
    std::string root = env && *env ? env : STRATA_FUZZ_SOURCE_DIR;
    return root + "/" + std::string(rel);
}

void check_failed(const char* cond, const char* file, int line, const std::string& detail) {
    std::fprintf(stderr, "strata fuzz: invariant violated: %s (%s:%d)%s%s\n", cond, file, line,
                 detail.empty() ? "" : ": ", detail.c_str());
    std::abort();
}

}  // namespace strata::fuzz

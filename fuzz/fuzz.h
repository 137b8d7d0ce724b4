// Fuzz harness glue (docs/reliability.md). Each fuzz_<name>.cpp defines its entry with
// STRATA_FUZZ_TARGET(name) { ... }: built with STRATA_LIBFUZZER (clang, `make fuzz`) it is
// LLVMFuzzerTestOneInput of its own binary; built without (g++, the normal test build) it
// registers itself with the replay test, which runs every file of fuzz/corpus/<name>/ and
// tests/fuzz_regressions/<name>/ through it. Harness invariants use STRATA_FUZZ_CHECK: a
// violated one aborts (a crash for libFuzzer, a failed test for the replay).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::fuzz {

using Entry = int (*)(const uint8_t* data, size_t size);

struct Registration {
    Registration(const char* name, Entry entry);
};

// The registered targets, in registration order (replay only).
struct Target {
    const char* name;
    Entry entry;
};
const Target* targets(size_t* n);

// A file of the repository: $STRATA_SOURCE_DIR/rel, else the configured source dir.
std::string source_path(std::string_view rel);

[[noreturn]] void check_failed(const char* cond, const char* file, int line, const std::string& detail);

}  // namespace strata::fuzz

#define STRATA_FUZZ_CHECK(cond, detail)                                                \
    do {                                                                              \
        if (!(cond)) ::strata::fuzz::check_failed(#cond, __FILE__, __LINE__, (detail)); \
    } while (0)

#ifdef STRATA_LIBFUZZER
#define STRATA_FUZZ_TARGET(name)                                                     \
    static int strata_fuzz_entry_##name(const uint8_t* data, size_t size);           \
    extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {        \
        return strata_fuzz_entry_##name(data, size);                                 \
    }                                                                                \
    static int strata_fuzz_entry_##name(const uint8_t* data, size_t size)
#else
#define STRATA_FUZZ_TARGET(name)                                                     \
    static int strata_fuzz_entry_##name(const uint8_t* data, size_t size);           \
    static const ::strata::fuzz::Registration strata_fuzz_reg_##name(#name,          \
                                                                     strata_fuzz_entry_##name); \
    static int strata_fuzz_entry_##name(const uint8_t* data, size_t size)
#endif

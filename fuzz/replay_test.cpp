// Replays the fuzz corpora (fuzz/corpus/<target>/) and every crash found so far
// (tests/fuzz_regressions/<target>/) through the targets' entry functions, in the normal
// g++ build without libFuzzer, so a fixed bug stays fixed in every `make test`.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>

#include "fuzz.h"

namespace {

namespace fs = std::filesystem;

// The file being replayed, for the crash report (a signal handler prints it).
char g_current[4096];

void on_fatal_signal(int sig) {
    const char msg[] = "strata fuzz replay: crashed on input ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, g_current, strlen(g_current));
    (void)!write(2, "\n", 1);
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

std::vector<fs::path> inputs(const std::string& dir) {
    std::vector<fs::path> v;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return v;
    for (const auto& e : fs::recursive_directory_iterator(dir, ec))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.' &&
            e.path().filename() != "README.md")
            v.push_back(e.path());
    std::sort(v.begin(), v.end());
    return v;
}

class Replay : public ::testing::TestWithParam<strata::fuzz::Target> {};

TEST_P(Replay, CorpusAndRegressions) {
    const auto& t = GetParam();
    std::signal(SIGSEGV, on_fatal_signal);
    std::signal(SIGABRT, on_fatal_signal);
    std::signal(SIGBUS, on_fatal_signal);
    std::signal(SIGFPE, on_fatal_signal);
    size_t n_corpus = 0, n_regress = 0;
    for (const char* kind : {"corpus", "regressions"}) {
        const std::string dir = std::string(kind) == "corpus"
                                    ? strata::fuzz::source_path(std::string("fuzz/corpus/") + t.name)
                                    : strata::fuzz::source_path(std::string("tests/fuzz_regressions/") + t.name);
        for (const auto& p : inputs(dir)) {
            std::ifstream f(p, std::ios::binary);
            ASSERT_TRUE(f) << p;
            std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
            std::snprintf(g_current, sizeof g_current, "%s", p.c_str());
            // A copy of exactly the file's size, so reads past the end are caught by ASan.
            std::unique_ptr<uint8_t[]> buf(new uint8_t[bytes.size() ? bytes.size() : 1]);
            if (!bytes.empty()) std::memcpy(buf.get(), bytes.data(), bytes.size());
            EXPECT_EQ(t.entry(buf.get(), bytes.size()), 0) << p;
            (std::string(kind) == "corpus" ? n_corpus : n_regress)++;
        }
    }
    g_current[0] = 0;
    std::printf("%s: replayed %zu corpus inputs and %zu regression inputs\n", t.name, n_corpus, n_regress);
    EXPECT_GT(n_corpus, 0u) << "fuzz/corpus/" << t.name << " is empty";
}

std::vector<strata::fuzz::Target> all_targets() {
    size_t n = 0;
    const strata::fuzz::Target* t = strata::fuzz::targets(&n);
    return {t, t + n};
}

INSTANTIATE_TEST_SUITE_P(Fuzz, Replay, ::testing::ValuesIn(all_targets()),
                         [](const ::testing::TestParamInfo<strata::fuzz::Target>& i) {
                             return std::string(i.param.name);
                         });

}  // namespace

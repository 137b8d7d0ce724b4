// Merge-method tests: hand-computed 2x3 cases for every baseline, the identities of
// shared/specs/tada.md §6.7, bit-identical DARE masks for a fixed seed, and a comparison
// against the independent numpy reference (tools/lora/reference_merge.py).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <random>

#include "adapters/test_util.h"
#include "adapters/merge.h"
#include "adapters/merge/sparsify.h"

namespace strata::adapters {
namespace {

// A dense d_out x d_in matrix as a LoRA: B = I (d_out x d_out), A = M, scale 1.
LoraModule as_lora(const std::vector<std::vector<float>>& m) {
    LoraModule l;
    l.d_out = int64_t(m.size());
    l.d_in = int64_t(m[0].size());
    l.rank = l.d_out;
    l.b.assign(size_t(l.d_out * l.d_out), 0.f);
    for (int64_t i = 0; i < l.d_out; ++i) l.b[size_t(i * l.d_out + i)] = 1.f;
    for (auto& row : m) l.a.insert(l.a.end(), row.begin(), row.end());
    return l;
}

using testing::random_lora;

using testing::dense_of;

std::vector<float> run(const char* method, const MergeOptions& o, std::vector<const LoraModule*> parts, int64_t r_out,
                       const Gates* g = nullptr) {
    auto m = make_merge_method(method);
    EXPECT_TRUE(m) << m.error().message();
    EXPECT_TRUE((*m)->check(o, parts.size()).ok());
    ModuleJob job;
    job.d_out = parts[0]->d_out;
    job.d_in = parts[0]->d_in;
    job.r_out = r_out;
    job.parts = parts;
    auto r = (*m)->merge_module(o, job, g);
    EXPECT_TRUE(r) << r.error().message();
    return dense_of(r->f, job.d_out, job.d_in);
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, double tol) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "entry " << i;
}

const LoraModule kT = as_lora({{1, -2, 3}, {-4, 5, -6}});
const LoraModule kD = as_lora({{-2, 1, 1}, {3, -1, 2}});

TEST(MergeHand, Linear) {
    MergeOptions o;
    expect_near(run("linear", o, {&kT, &kD}, 2), {-0.5f, -0.5f, 2, -0.5f, 2, -2}, 1e-5);
}

TEST(MergeHand, TaskArithmetic) {
    MergeOptions o;
    o.weights = {1, 2};
    o.lambda = 0.5;
    expect_near(run("task_arithmetic", o, {&kT, &kD}, 2), {-1.5f, 0, 2.5f, 1, 1.5f, -1}, 1e-5);
}

// Worked by hand in the file's history: trim to 3 of 6 entries, w = (1, 2), sign by the
// weighted sum, divide by the sum of agreeing weights (mergekit).
TEST(MergeHand, TiesMergekit) {
    MergeOptions o;
    o.weights = {1, 2};
    o.density = 0.5;
    o.exact_svd = true;
    expect_near(run("ties", o, {&kT, &kD}, 2), {-2, 0, 0, 3, 5, -6}, 1e-5);
    o.exact_svd = false;  // the randomized path is exact when the rank is full
    expect_near(run("ties", o, {&kT, &kD}, 2), {-2, 0, 0, 3, 5, -6}, 1e-4);
}

TEST(MergeHand, TiesPeft) {
    MergeOptions o;
    o.weights = {1, 2};
    o.density = 0.5;
    o.exact_svd = true;
    o.peft_ties = true;
    expect_near(run("ties", o, {&kT, &kD}, 2), {-4, 0, 0, -4, 5, -6}, 1e-5);
}

TEST(MergeHand, DareTiesAtDensityOne) {
    MergeOptions o;
    o.weights = {1, 2};
    o.density = 1.0;
    o.exact_svd = true;
    expect_near(run("dare_ties", o, {&kT, &kD}, 2), {-4, 2, 5, 6, 5, -6}, 1e-5);
}

TEST(MergeHand, DareAtDensityOneIsTaskArithmetic) {
    MergeOptions o;
    o.density = 1.0;
    o.exact_svd = true;
    expect_near(run("dare", o, {&kT, &kD}, 2), {-1, -1, 4, -1, 4, -4}, 1e-5);
}

TEST(Dare, FixedSeedGivesBitIdenticalMasks) {
    const auto m1 = dare_mask(100000, 0.3, 42), m2 = dare_mask(100000, 0.3, 42), m3 = dare_mask(100000, 0.3, 43);
    EXPECT_EQ(m1, m2);
    EXPECT_NE(m1, m3);
    size_t kept = 0;
    for (auto v : m1) kept += v;
    EXPECT_NEAR(double(kept) / 1e5, 0.3, 0.01);
    // Whole merges too: same seed -> same bytes; module seeds differ per module.
    const LoraModule t = random_lora(16, 12, 4, 1), d = random_lora(16, 12, 4, 2);
    MergeOptions o;
    o.seed = 7;
    EXPECT_EQ(run("dare_ties", o, {&t, &d}, 4), run("dare_ties", o, {&t, &d}, 4));
    EXPECT_NE(module_seed(7, 0, 3, WeightRole::kQ), module_seed(7, 0, 3, WeightRole::kK));
}

TEST(Dare, RescaleKeepsExpectationAndL1) {
    std::vector<float> t(20000, 1.f), u = t;
    dare_drop(t, 0.25, 5, false);
    double s = 0;
    for (float v : t) {
        EXPECT_TRUE(v == 0.f || v == 4.f);
        s += v;
    }
    EXPECT_NEAR(s / 20000, 1.0, 0.03);
    dare_drop(u, 0.25, 5, true);  // L1 matching: the sum is kept exactly (up to eps)
    double s2 = 0;
    for (float v : u) s2 += v;
    EXPECT_NEAR(s2, 20000, 0.05);
}

TEST(MergeIdentity, OneAdapterComesBack) {
    const LoraModule t = random_lora(24, 20, 4, 3, 2.f);
    const std::vector<float> want = dense_delta(t);
    MergeOptions o;
    expect_near(run("linear", o, {&t}, 4), want, 1e-4);
    expect_near(run("task_arithmetic", o, {&t}, 4), want, 1e-4);
    o.density = 1.0;
    expect_near(run("dare", o, {&t}, 4), want, 1e-4);
}

TEST(MergeIdentity, TruncationOfRankRSumIsExact) {
    // Two rank-3 updates: their sum has rank <= 6, so rank-6 factors reproduce it.
    const LoraModule t = random_lora(30, 25, 3, 4), d = random_lora(30, 25, 3, 5, 0.5f);
    std::vector<float> want = dense_delta(t);
    const std::vector<float> dd = dense_delta(d);
    for (size_t i = 0; i < want.size(); ++i) want[i] += dd[i];
    MergeOptions o;
    expect_near(run("task_arithmetic", o, {&t, &d}, 6), want, 1e-4);  // == PEFT `cat`
    // Dense truncation of a rank-6 matrix to rank 6, both SVD routes.
    for (bool exact : {true, false}) {
        const Factors f = compress_dense(want, 30, 25, 6, exact, 1);
        expect_near(dense_of(f, 30, 25), want, 1e-4);
        EXPECT_NEAR(f.kept_energy, 1.0, 1e-6);
    }
}

TEST(Linalg, RandomizedSvdNearOptimal) {
    // A full-rank matrix with a decaying spectrum: the randomized rank-8 error must be
    // within 1% of the optimal (BDCSVD) error.
    const LoraModule big = random_lora(120, 80, 80, 9);
    std::vector<float> m = dense_delta(big);
    auto err = [&](const Factors& f) {
        const auto d = dense_of(f, 120, 80);
        double e = 0;
        for (size_t i = 0; i < d.size(); ++i) e += (d[i] - m[i]) * (d[i] - m[i]);
        return std::sqrt(e);
    };
    const double e_exact = err(compress_dense(m, 120, 80, 8, true, 1));
    const double e_rand = err(compress_dense(m, 120, 80, 8, false, 1));
    EXPECT_LE(e_rand, e_exact * 1.01);
}

TEST(MergeErrors, ExactMessages) {
    MergeOptions o;
    o.weights = {1};
    auto lin = make_merge_method("linear");
    EXPECT_EQ((*lin)->check(o, 2).message(), "--weights: 2 adapters but 1 weights");
    o.weights = {};
    o.density = 1.5;
    EXPECT_EQ((*make_merge_method("ties"))->check(o, 2).message(), "--density: must be in (0, 1] for ties (got 1.5)");
    EXPECT_EQ(make_merge_method("tie").error().message(),
              "--method: unknown method \"tie\" (known: linear, task_arithmetic, ties, dare, dare_ties, tada)");
    MergeOptions t;
    EXPECT_EQ((*make_merge_method("tada"))->check(t, 3).message(),
              "--adapter: tada merges exactly 2 adapters (task, then domain), got 3");
    t.tada_mode = "fast";
    EXPECT_EQ((*make_merge_method("tada"))->check(t, 2).message(),
              "--tada-mode: unknown mode \"fast\" (known: full, gating_only, subspace_only, ramp, full_dense)");
}

// The numpy reference: same inputs, independently computed expected updates.
TEST(MergeReference, MatchesNumpy) {
    std::ifstream f(std::string(STRATA_SOURCE_DIR) + "/tests/fixtures/lora/reference_merge.json");
    ASSERT_TRUE(f) << "missing fixture";
    nlohmann::json j = nlohmann::json::parse(f);
    auto mod = [&](const char* a, const char* b, double s) {
        LoraModule m;
        m.d_out = j["d_out"];
        m.d_in = j["d_in"];
        m.rank = j["rank"];
        m.scale = float(s);
        for (auto& row : j[a]) for (double v : row) m.a.push_back(float(v));
        for (auto& row : j[b]) for (double v : row) m.b.push_back(float(v));
        return m;
    };
    const LoraModule t = mod("A_T", "B_T", j["s_T"]), d = mod("A_D", "B_D", j["s_D"]);
    auto want = [&](const char* k) {
        std::vector<float> v;
        for (auto& row : j["expected"][k]) for (double x : row) v.push_back(float(x));
        return v;
    };
    MergeOptions o;
    o.weights = {1, 2};
    o.exact_svd = true;
    expect_near(run("linear", o, {&t, &d}, 4), want("linear"), 1e-4);
    o.lambda = 0.5;
    expect_near(run("task_arithmetic", o, {&t, &d}, 4), want("task_arithmetic_l0.5"), 1e-4);
    o.lambda = 1;
    o.density = 0.4;
    expect_near(run("ties", o, {&t, &d}, 5), want("ties_d0.4"), 1e-4);
    o.peft_ties = true;
    expect_near(run("ties", o, {&t, &d}, 5), want("ties_peft_d0.4"), 1e-4);
    o.peft_ties = false;
    o.density = 1;
    expect_near(run("dare_ties", o, {&t, &d}, 5), want("dare_ties_d1"), 1e-4);
    MergeOptions ot;
    ot.lambda = 1.5;
    ot.tada_mode = "full_dense";
    Gates g;
    g.n_layer = 1;
    g.g_t.assign(kNumRoles, 0.7);
    g.g_d.assign(kNumRoles, 0.3);
    expect_near(run("tada", ot, {&t, &d}, 4, &g), want("tada_g0.7_k0.2_l1.5"), 1e-4);
}

}  // namespace
}  // namespace strata::adapters

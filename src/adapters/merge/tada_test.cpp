// TaDA tests (shared/specs/tada.md §6.7): probe invariance to rescaling, the conflict rule
// on D = -T and D = T, gate calibration on a hand-checkable table, the ramp, and the
// single-adapter module rule.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "adapters/test_util.h"
#include "adapters/gates.h"
#include "adapters/merge.h"

namespace strata::adapters {
namespace {

using testing::random_lora;

Gates uniform(double gt) {
    Gates g;
    g.n_layer = 1;
    g.g_t.assign(kNumRoles, gt);
    g.g_d.assign(kNumRoles, 1 - gt);
    return g;
}

Result<ModuleResult> tada(const LoraModule* t, const LoraModule* d, const Gates& g, MergeOptions o = {}) {
    auto m = make_merge_method("tada");
    ModuleJob job;
    job.d_out = (t ? t : d)->d_out;
    job.d_in = (t ? t : d)->d_in;
    job.r_out = 8;
    job.parts = {t, d};
    return (*m)->merge_module(o, job, &g);
}

using testing::dense_of;

TEST(TadaProbe, InvariantToRescalingB) {
    const LoraModule t = random_lora(40, 30, 4, 1, 2.f);
    std::mt19937_64 g(3);
    std::normal_distribution<float> n(0.f, 1.f);
    std::vector<float> xs(30 * 50);
    for (float& x : xs) x = n(g);
    auto probe = [&](const LoraModule& m) {
        const auto gb = gram_b(m);
        double rho = 0;
        for (int t = 0; t < 50; ++t) {
            double nx = 0;
            for (int i = 0; i < 30; ++i) nx += double(xs[size_t(t * 30 + i)]) * xs[size_t(t * 30 + i)];
            rho += response_norm(m, gb, &xs[size_t(t * 30)]) / std::sqrt(nx);
        }
        return rho / 50 / frobenius_norm(m, gb);
    };
    const double p0 = probe(t);
    EXPECT_GT(p0, 0);
    EXPECT_LE(p0, 1);
    for (float c : {0.1f, 3.f, 100.f}) {
        LoraModule s = t;
        for (float& v : s.b) v *= c;
        // c * B is stored in float32 (each entry rounds by <= 6e-8 relative), so the bound
        // is 1e-8 here; scaling through the float64 scale below is exact to 1e-9.
        EXPECT_NEAR(probe(s), p0, 1e-8 * p0) << "c = " << c;
        s = t;
        s.scale *= c;  // another alpha or rslora
        EXPECT_NEAR(probe(s), p0, 1e-9 * p0) << "scale x " << c;
    }
}

TEST(TadaConflict, OppositeAdapterLosesEverything) {
    const LoraModule t = random_lora(20, 16, 3, 2);
    LoraModule d = t;
    for (float& v : d.b) v = -v;  // D = -T: every component pair has C = -1
    auto r = tada(&t, &d, uniform(0.7));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->dropped, 3);
    std::vector<float> want = dense_delta(t);
    for (float& v : want) v *= 0.7f;  // only the task side (larger gated strength) survives
    const auto got = dense_of(r->f, 20, 16);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4);
}

TEST(TadaConflict, AlignedAdaptersKeepEverything) {
    const LoraModule t = random_lora(20, 16, 3, 2);
    auto r = tada(&t, &t, uniform(0.7));  // D = T: C = +1, nothing dropped, gates sum to 1
    ASSERT_TRUE(r);
    EXPECT_EQ(r->dropped, 0);
    const auto want = dense_delta(t), got = dense_of(r->f, 20, 16);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4);
}

TEST(TadaConflict, GatingOnlyDropsNothing) {
    const LoraModule t = random_lora(20, 16, 3, 2);
    LoraModule d = t;
    for (float& v : d.b) v = -v;
    MergeOptions o;
    o.tada_mode = "gating_only";
    auto r = tada(&t, &d, uniform(0.7), o);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->dropped, 0);  // 0.7 T - 0.3 T = 0.4 T
    const auto want = dense_delta(t), got = dense_of(r->f, 20, 16);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], 0.4f * want[i], 1e-4);
}

TEST(TadaModules, SingleAdapterGetsGateOne) {
    const LoraModule d = random_lora(20, 16, 3, 5, 1.5f);
    MergeOptions o;
    o.lambda = 2;
    auto r = tada(nullptr, &d, uniform(0.9), o);
    ASSERT_TRUE(r);
    const auto want = dense_delta(d), got = dense_of(r->f, 20, 16);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], 2 * want[i], 1e-4);
}

TEST(TadaGates, CalibrationByHand) {
    // One projection type present (q) over 3 layers: delta = (-1, 0, 1), median 0, so
    // tau = 1 / ln 9 and the gates are 0.1, 0.5, 0.9 for the domain.
    const double nan = std::nan("");
    std::vector<double> pt(3 * kNumRoles, nan), pd(3 * kNumRoles, nan);
    for (int l = 0; l < 3; ++l) {
        pt[size_t(l * kNumRoles)] = 0.2;
        pd[size_t(l * kNumRoles)] = 0.2 * std::exp(double(l - 1));
    }
    MergeOptions o;
    Gates g = calibrate_gates(3, pt, pd, o);
    EXPECT_NEAR(g.d(0, 0), 0.1, 1e-9);
    EXPECT_NEAR(g.d(1, 0), 0.5, 1e-12);
    EXPECT_NEAR(g.d(2, 0), 0.9, 1e-9);
    EXPECT_NEAR(g.t(2, 0), 0.1, 1e-9);
    EXPECT_EQ(g.d(1, 1), 0.5);  // absent modules stay neutral
    // Centring removes a constant domain bias: multiplying every p_D by 5 changes nothing.
    for (double& v : pd) v *= 5;
    Gates g2 = calibrate_gates(3, pt, pd, o);
    for (int l = 0; l < 3; ++l) EXPECT_NEAR(g2.d(l, 0), g.d(l, 0), 1e-9);
}

TEST(TadaGates, Ramp) {
    Gates g = ramp_gates(30, 0.9);
    EXPECT_NEAR(g.t(0, 0), 0.9, 1e-12);
    EXPECT_NEAR(g.t(29, 6), 0.1, 1e-12);
    EXPECT_NEAR(g.d(29, 6), 0.9, 1e-12);
    EXPECT_LT(g.t(20, 3), g.t(10, 3));
}

}  // namespace
}  // namespace strata::adapters

// Tests of the KVarN building blocks: Hadamard (H·H = I, FWHT == dense), VarN against the
// independent FP64 reference of tools/varn_golden.py (fixtures in testdata/), the VarN
// contract (B = X/(sc·sr), imbalance not worse), RTN error <= d/2, code packing.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "kv/hadamard.h"
#include "kv/varn.h"

namespace strata::kv {
namespace {

TEST(Hadamard, SquaresToIdentityAndFwhtMatchesDense) {
    for (int n : {8, 64, 128}) {
        const std::vector<double> h = hadamard_dense(n);
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j) {
                double s = 0;
                for (int k = 0; k < n; ++k) s += h[size_t(i * n + k)] * h[size_t(k * n + j)];
                EXPECT_NEAR(s, i == j ? 1.0 : 0.0, 1e-12);
            }
        std::mt19937 rng(n);
        std::normal_distribution<float> nd;
        std::vector<float> x(static_cast<size_t>(n));
        for (auto& v : x) v = nd(rng);
        std::vector<float> y = x;
        fwht(y.data(), n);
        for (int i = 0; i < n; ++i) {
            double s = 0;
            for (int k = 0; k < n; ++k) s += h[size_t(i * n + k)] * x[size_t(k)];
            EXPECT_NEAR(y[size_t(i)], s, 1e-5);
        }
        fwht(y.data(), n);  // H·H = I
        for (int i = 0; i < n; ++i) EXPECT_NEAR(y[size_t(i)], x[size_t(i)], 1e-5);
    }
}

TEST(Varn, MatchesIndependentFp64Reference) {
    std::ifstream f(std::string(STRATA_SOURCE_DIR) + "/src/kv/testdata/varn_golden.json");
    ASSERT_TRUE(f) << "missing fixture; run tools/varn_golden.py";
    const auto cases = nlohmann::json::parse(f);
    ASSERT_EQ(cases.size(), 3u);
    for (const auto& c : cases) {
        SCOPED_TRACE(c["name"].get<std::string>());
        const int R = c["rows"], C = c["cols"], bits = c["bits"];
        const std::vector<float> x = c["x"].get<std::vector<float>>();
        const VarnResult r = varn(x.data(), R, C, c["iterations"]);
        for (int j = 0; j < C; ++j) EXPECT_NEAR(r.sc[size_t(j)], c["sc"][size_t(j)].get<double>(), 1e-5 * c["sc"][size_t(j)].get<double>());
        for (int i = 0; i < R; ++i) EXPECT_NEAR(r.sr[size_t(i)], c["sr"][size_t(i)].get<double>(), 1e-5 * c["sr"][size_t(i)].get<double>());
        EXPECT_NEAR(r.imbalance, c["imbalance"].get<double>(), 1e-6 * c["imbalance"].get<double>());
        int mismatches = 0;
        std::vector<float> b(static_cast<size_t>(C));
        std::vector<uint8_t> codes(static_cast<size_t>(C));
        for (int i = 0; i < R; ++i) {
            for (int j = 0; j < C; ++j) b[size_t(j)] = x[size_t(i * C + j)] / (r.sc[size_t(j)] * r.sr[size_t(i)]);
            const RtnRow q = rtn_row(b.data(), C, bits, codes.data());
            EXPECT_NEAR(q.lo, c["lo"][size_t(i)].get<double>(), 1e-5 * std::fabs(c["lo"][size_t(i)].get<double>()) + 1e-6);
            EXPECT_NEAR(q.d, c["d"][size_t(i)].get<double>(), 1e-5 * c["d"][size_t(i)].get<double>());
            for (int j = 0; j < C; ++j) {
                const int g = c["codes"][size_t(i * C + j)];
                EXPECT_LE(std::abs(int(codes[size_t(j)]) - g), 1);
                mismatches += codes[size_t(j)] != g;
            }
        }
        // float vs FP64 may only disagree on values within round-off of a half-step.
        EXPECT_LE(mismatches, R * C / 200);
    }
}

TEST(Varn, ReturnsBalancedTileAndNeverWorsensImbalance) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    const int R = 64, C = 128;
    std::vector<float> x(size_t(R * C));
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) x[size_t(i * C + j)] = nd(rng) * (i == 5 ? 30.f : 1.f) * (j % 17 == 0 ? 6.f : 1.f);
    const VarnResult r = varn(x.data(), R, C, 16);
    EXPECT_LE(r.imbalance, r.imbalance_in);
    EXPECT_LE(r.imbalance, imbalance(x.data(), R, C));
    std::vector<float> b(x.size());
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) b[size_t(i * C + j)] = x[size_t(i * C + j)] / (r.sc[size_t(j)] * r.sr[size_t(i)]);
    EXPECT_NEAR(imbalance(b.data(), R, C), r.imbalance, 1e-3 * r.imbalance);
    for (float s : r.sc) EXPECT_TRUE(s >= 0.74f && s <= 22027.f);
}

TEST(Rtn, ErrorAtMostHalfStepAndPackingRoundTrips) {
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    for (int bits : {2, 3, 4}) {
        std::vector<float> x(128);
        for (auto& v : x) v = nd(rng) * 3.f;
        x[5] = 40.f;  // an outlier stretches the range
        std::vector<uint8_t> codes(128), back(128), packed(packed_bytes(128, bits));
        const RtnRow r = rtn_row(x.data(), 128, bits, codes.data());
        for (int j = 0; j < 128; ++j) EXPECT_LE(std::fabs(r.lo + r.d * codes[size_t(j)] - x[size_t(j)]), r.d / 2 * (1 + 1e-5f));
        pack_codes(codes.data(), 128, bits, packed.data());
        unpack_codes(packed.data(), 128, bits, back.data());
        EXPECT_EQ(codes, back);
        EXPECT_EQ(packed.size(), size_t(128 * bits / 8));
    }
    // Constant and zero rows: step floors at 1e-10, every code 0, exact reconstruction.
    std::vector<float> k(64, 2.5f);
    std::vector<uint8_t> codes(64);
    const RtnRow r = rtn_row(k.data(), 64, 2, codes.data());
    EXPECT_EQ(r.lo, 2.5f);
    for (uint8_t c : codes) EXPECT_EQ(c, 0);
    // Half-way values round to even: range [0, 3] at 2 bits has d = 1; 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.
    std::vector<float> h = {0.f, 0.5f, 1.5f, 2.5f, 3.f, 0.f, 0.f, 0.f};
    std::vector<uint8_t> hc(8);
    rtn_row(h.data(), 8, 2, hc.data());
    EXPECT_EQ(hc, (std::vector<uint8_t>{0, 0, 2, 2, 3, 0, 0, 0}));
}

}  // namespace
}  // namespace strata::kv

// SIMD tile-attention kernels against the scalar ones (tile_kernels.h) at every ISA level
// this CPU has: random records of every bit-width pair, query groups that do and do not
// fill the 3-head register block, FP16 sink/tail row counts that are not multiples of the
// vector width, and the softmax helpers on ragged lengths. Also the stripe code order
// (varn.h): round trip and its exact position map against the reference order.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kv/tile_kernels.h"
#include "kv/varn.h"
#include "tensor/dtype.h"

namespace strata::kv {
namespace {

std::vector<cpu::Isa> simd_levels() {
    std::vector<cpu::Isa> v;
    for (cpu::Isa isa : {cpu::Isa::kAvx2, cpu::Isa::kAvx512})
        if (cpu::detected_isa() >= isa) v.push_back(isa);
    return v;
}

double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v) m = std::max(m, double(std::fabs(x)));
    return m;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rel, const char* what) {
    ASSERT_EQ(got.size(), want.size());
    const double tol = rel * std::max(1e-30, max_abs(want));
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << what << " at " << i;
}

TEST(TileCodes, StripeOrderRoundTripsAndMapsPositions) {
    std::mt19937 rng(5);
    for (int bits : {2, 3, 4})
        for (int n : {32, 64, 128, 256}) {
            SCOPED_TRACE(testing::Message() << bits << " bits, n " << n);
            std::vector<uint8_t> c(static_cast<size_t>(n)), back(c.size()), p(packed_bytes(n, bits)), ref(p.size());
            for (auto& x : c) x = uint8_t(rng() % (1u << bits));
            pack_tile_codes(c.data(), n, bits, p.data());
            unpack_tile_codes(p.data(), n, bits, back.data());
            EXPECT_EQ(back, c);
            // Converter to the reference order: unpack stripe, pack reference.
            pack_codes(c.data(), n, bits, ref.data());
            std::vector<uint8_t> c2(c.size()), ref2(p.size());
            unpack_tile_codes(p.data(), n, bits, c2.data());
            pack_codes(c2.data(), n, bits, ref2.data());
            EXPECT_EQ(ref2, ref);
            if (!tile_stripe_order(n)) {
                EXPECT_EQ(p, ref);  // short rows keep the reference order
                continue;
            }
            // Position map of varn.h, checked code by code with a single 1 (or max) code.
            for (int i = 0; i < n; ++i) {
                std::vector<uint8_t> one(c.size(), 0);
                one[size_t(i)] = uint8_t((1u << bits) - 1);
                pack_tile_codes(one.data(), n, bits, p.data());
                if (bits == 4) {
                    EXPECT_EQ(p[size_t((i / 32) * 16 + i % 16)], (i % 32) < 16 ? 0x0F : 0xF0) << i;
                } else {
                    EXPECT_EQ(p[size_t((i / 64) * 16 + i % 16)], 3 << ((i % 64) / 16 * 2)) << i;
                    if (bits == 3) {
                        const int j = i % 16, k = (i % 64) / 16;
                        EXPECT_EQ(p[size_t(n / 4 + (i / 64) * 8 + j % 8)], 1 << (4 * (j / 8) + k)) << i;
                    }
                }
            }
        }
}

struct Fixture {
    TileConfig tc;
    TileLayout L;
    std::vector<uint8_t> rec;
};

Fixture make_record(int bk, int bv, bool varn, int D, int G, uint32_t seed) {
    Fixture f;
    f.tc.bits_k = bk, f.tc.bits_v = bv, f.tc.varn = varn, f.tc.tile = G, f.tc.iterations = 4;
    f.L = tile_layout(f.tc, D);
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::vector<float> k(size_t(G) * size_t(D)), v(k.size());
    for (size_t i = 0; i < k.size(); ++i) k[i] = nd(rng) * (i % size_t(D) == 3 ? 10.f : 1.f), v[i] = nd(rng);
    f.rec.resize(f.L.total);
    encode_tile(f.tc, f.L, k.data(), v.data(), f.rec.data());
    return f;
}

TEST(TileKernels, SimdEqualsScalarOnRandomRecords) {
    const TileKernels& ref = tile_kernels(cpu::Isa::kScalar);
    struct B { int bk, bv; bool varn; };
    for (cpu::Isa isa : simd_levels()) {
        const TileKernels& kern = tile_kernels(isa);
        for (B b : {B{4, 2, true}, B{2, 2, true}, B{2, 2, false}, B{4, 4, false}, B{3, 3, true}, B{4, 4, true}, B{2, 4, true}})
            for (int D : {64, 128})
                for (int G : {64, 128})
                    for (int g : {1, 3, 4, 7}) {
                        SCOPED_TRACE(testing::Message() << kern.name << " k" << b.bk << "v" << b.bv << (b.varn ? " varn" : "")
                                                        << " D" << D << " G" << G << " g" << g);
                        const Fixture f = make_record(b.bk, b.bv, b.varn, D, G, uint32_t(D + G + g + b.bk));
                        std::mt19937 rng{uint32_t(g)};
                        std::normal_distribution<float> nd;
                        std::vector<float> q(size_t(g) * size_t(D));
                        for (auto& x : q) x = nd(rng) * 0.125f;
                        const size_t ld = size_t(G) + 5;  // scores live inside a longer row
                        std::vector<float> s_ref(size_t(g) * ld, 0.f), s_simd(s_ref.size(), 0.f);
                        std::vector<float> scratch(tile_scratch_floats(f.L, g));
                        ref.scores(f.L, f.rec.data(), q.data(), g, s_ref.data(), ld, scratch.data());
                        kern.scores(f.L, f.rec.data(), q.data(), g, s_simd.data(), ld, scratch.data());
                        expect_close(s_simd, s_ref, 1e-5, "scores");
                        // Softmax-like weights, some exactly zero (masked positions).
                        std::vector<float> p(size_t(g) * ld);
                        for (size_t i = 0; i < p.size(); ++i) p[i] = i % 7 == 3 ? 0.f : std::exp(nd(rng));
                        std::vector<float> o_ref(size_t(g) * size_t(D)), o_simd;
                        for (auto& x : o_ref) x = nd(rng);
                        o_simd = o_ref;  // values accumulate into out
                        ref.values(f.L, f.rec.data(), p.data(), ld, g, o_ref.data(), scratch.data());
                        kern.values(f.L, f.rec.data(), p.data(), ld, g, o_simd.data(), scratch.data());
                        expect_close(o_simd, o_ref, 1e-5, "values");
                    }
    }
}

TEST(TileKernels, SimdFpRowsAndSoftmaxEqualScalar) {
    const TileKernels& ref = tile_kernels(cpu::Isa::kScalar);
    std::mt19937 rng(17);
    std::normal_distribution<float> nd;
    for (cpu::Isa isa : simd_levels()) {
        const TileKernels& kern = tile_kernels(isa);
        for (int D : {64, 128})
            for (int g : {1, 3, 5})
                for (int n : {1, 7, 37, 128, 129}) {  // tail lengths around the sink/tile boundaries
                    SCOPED_TRACE(testing::Message() << kern.name << " D" << D << " g" << g << " n" << n);
                    const size_t stride = size_t(3 * D);  // [tokens][n_head_kv = 3][D]
                    std::vector<uint16_t> rows(size_t(n) * stride);
                    for (auto& x : rows) x = fp32_to_fp16(nd(rng));
                    std::vector<float> q(size_t(g) * size_t(D));
                    for (auto& x : q) x = nd(rng) * 0.125f;
                    const size_t ld = size_t(n) + 3;
                    std::vector<float> s_ref(size_t(g) * ld, 0.f), s_simd(s_ref.size(), 0.f);
                    ref.fp_scores(rows.data() + D, stride, n, D, q.data(), g, s_ref.data(), ld);
                    kern.fp_scores(rows.data() + D, stride, n, D, q.data(), g, s_simd.data(), ld);
                    expect_close(s_simd, s_ref, 1e-5, "fp scores");
                    std::vector<float> o_ref(size_t(g) * size_t(D), 0.5f), o_simd = o_ref;
                    ref.fp_values(rows.data() + D, stride, n, D, s_ref.data(), ld, g, o_ref.data());
                    kern.fp_values(rows.data() + D, stride, n, D, s_ref.data(), ld, g, o_simd.data());
                    expect_close(o_simd, o_ref, 1e-5, "fp values");
                }
        for (int n : {1, 5, 16, 17, 255, 256, 257, 1000}) {
            std::vector<float> x(static_cast<size_t>(n));
            for (auto& v : x) v = nd(rng) * 8.f;
            x[size_t(n / 2)] = -200.f;  // deep underflow
            EXPECT_EQ(kern.max(x.data(), n), ref.max(x.data(), n)) << n;
            std::vector<float> a = x, b = x;
            const float m = ref.max(x.data(), n);
            const double sa = ref.exp_sum(a.data(), n, m), sb = kern.exp_sum(b.data(), n, m);
            EXPECT_NEAR(sb, sa, 1e-6 * sa) << n;
            for (int i = 0; i < n; ++i) ASSERT_NEAR(b[size_t(i)], a[size_t(i)], 2e-7 * (1 + a[size_t(i)])) << n << " " << i;
        }
    }
}

}  // namespace
}  // namespace strata::kv

// Codec round trips and encoders: llama.cpp block encoders against hand-computed blocks
// (d = 0 and half-way rounding included); per-token formats and tile records on random,
// outlier, zero and constant rows within their error bounds; encoded sizes equal the
// layout's accounting; the TurboQuant codebook is the Lloyd-Max solution for D = 64.
#include <gtest/gtest.h>

#include <cstring>

#include <cmath>
#include <random>

#include "kv/codecs/codecs.h"
#include "kv/lane_dot.h"
#include "tensor/cpu/kernels.h"
#include "kv/row_cache.h"
#include "kv/tile_format.h"
#include "tensor/dtype.h"

namespace strata::kv {
namespace {

std::unique_ptr<RowCodec> codec(const char* name) { return (*make_kv_method(name))->row_codec(64); }

TEST(LlamaBlocks, HandComputed) {
    std::vector<float> x(64, 0.f);
    for (int i = 0; i < 32; ++i) x[size_t(i)] = float(i) - 16.f;  // block 0: -16..15, block 1: zeros
    std::vector<uint8_t> buf(codec("q8_0")->row_bytes());
    codec("q8_0")->encode(x.data(), buf.data());
    auto* b8 = reinterpret_cast<BlockQ8_0*>(buf.data());
    EXPECT_EQ(fp16_to_fp32(b8[0].d), fp16_to_fp32(fp32_to_fp16(16.f / 127)));
    EXPECT_EQ(b8[0].qs[0], -127);                       // -16 / (16/127)
    EXPECT_EQ(b8[0].qs[8], int8_t(std::roundf(-8.f * 127 / 16)));  // -63.5 rounds away from zero: -64
    EXPECT_EQ(b8[0].qs[8], -64);
    EXPECT_EQ(b8[1].d, 0);                              // d = 0 block: codes 0
    for (int j = 0; j < 32; ++j) EXPECT_EQ(b8[1].qs[j], 0);

    buf.resize(codec("q4_0")->row_bytes());
    codec("q4_0")->encode(x.data(), buf.data());
    auto* b4 = reinterpret_cast<BlockQ4_0*>(buf.data());
    EXPECT_EQ(fp16_to_fp32(b4[0].d), 2.f);               // m = -16, d = m / -8
    EXPECT_EQ(b4[0].qs[0] & 15, 0);                     // -16/2 + 8.5 = 0.5 -> 0
    EXPECT_EQ(b4[0].qs[0] >> 4, 8);                     // element 16 = 0 -> 8
    EXPECT_EQ(b4[0].qs[1] & 15, 1);                     // -15/2 + 8.5 = 1.0 -> 1 (truncation)
    EXPECT_EQ(b4[0].qs[15] >> 4, 15);                   // 15/2 + 8.5 = 16 -> clamped to 15
    buf.resize(codec("q4_1")->row_bytes());
    codec("q4_1")->encode(x.data(), buf.data());
    auto* b41 = reinterpret_cast<BlockQ4_1*>(buf.data());
    EXPECT_EQ(fp16_to_fp32(b41[0].m), -16.f);
    EXPECT_EQ(fp16_to_fp32(b41[0].d), fp16_to_fp32(fp32_to_fp16(31.f / 15)));
    EXPECT_EQ(b41[0].qs[0] & 15, 0);
    EXPECT_EQ(b41[0].qs[15] >> 4, 15);                  // element 31 = max
    EXPECT_EQ(b41[1].d, 0);
}

std::vector<std::vector<float>> awkward_rows() {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd;
    std::vector<std::vector<float>> rows(4, std::vector<float>(64));
    for (auto& v : rows[0]) v = nd(rng);                         // random
    for (auto& v : rows[1]) v = nd(rng);
    rows[1][13] = 60.f;                                           // outlier
    // rows[2] zeros
    for (auto& v : rows[3]) v = -3.25f;                          // constant
    return rows;
}

TEST(RowCodecs, RoundTripWithinBlockBound) {
    // Bound per element: half a step of its block plus FP16 rounding of the scales.
    for (const char* name : {"fp32", "fp16", "q8_0", "q4_1", "q4_0"}) {
        auto c = codec(name);
        for (const auto& row : awkward_rows()) {
            std::vector<uint8_t> enc(c->row_bytes());
            std::vector<float> dec(64);
            c->encode(row.data(), enc.data());
            c->decode(enc.data(), dec.data());
            for (int b = 0; b < 2; ++b) {
                float mn = 1e30f, mx = -1e30f, amax = 0;
                for (int j = 32 * b; j < 32 * b + 32; ++j)
                    mn = std::min(mn, row[size_t(j)]), mx = std::max(mx, row[size_t(j)]), amax = std::max(amax, std::fabs(row[size_t(j)]));
                const std::string n = name;
                const float step = n == "q8_0" ? amax / 127 : n == "q4_0" ? amax / 8 : n == "q4_1" ? (mx - mn) / 15 : 0.f;
                for (int j = 32 * b; j < 32 * b + 32; ++j)
                    EXPECT_LE(std::fabs(dec[size_t(j)] - row[size_t(j)]), step * 0.5f * 1.01f + 2e-3f * std::fabs(row[size_t(j)]) + 1e-6f)
                        << name << " element " << j;
            }
        }
        EXPECT_EQ(c->row_bytes(), std::string(name) == "fp32" ? 256u : std::string(name) == "fp16" ? 128u
                                   : std::string(name) == "q8_0" ? 68u : std::string(name) == "q4_1" ? 40u : 36u);
    }
}

TEST(TileRecords, SizesMatchSpecAndRoundTripsAreBounded) {
    struct C { int bk, bv; bool varn; size_t total; };
    for (C c : {C{4, 2, true, 7296}, C{2, 2, true, 5248}, C{4, 4, true, 9344}, C{2, 2, false, 4864}, C{3, 3, true, 0}}) {
        TileConfig tc;
        tc.bits_k = c.bk, tc.bits_v = c.bv, tc.varn = c.varn;
        const TileLayout L = tile_layout(tc, 64);
        if (c.total) EXPECT_EQ(L.total, c.total);
        else EXPECT_EQ(L.total, 64u * 128 * 3 / 8 * 2 + 2 * (2 * 64 + 128) + 2 * (64 + 2 * 128));  // bit-plane 3-bit
        std::mt19937 rng(unsigned(c.bk * 10 + c.bv));
        std::normal_distribution<float> nd;
        std::vector<float> k(128 * 64), v(k.size()), kd(k.size()), vd(k.size());
        for (auto& x : k) x = nd(rng);
        for (auto& x : v) x = nd(rng);
        for (int t = 0; t < 128; ++t) k[size_t(t * 64 + 9)] *= 20.f;  // outlier channel
        for (int ch = 0; ch < 64; ++ch) k[size_t(5 * 64 + ch)] = 0.f, v[size_t(7 * 64 + ch)] = 1.5f;  // zero / constant token
        std::vector<uint8_t> rec(L.total);
        encode_tile(tc, L, k.data(), v.data(), rec.data());
        decode_tile(L, rec.data(), kd.data(), vd.data());
        double ek = 0, ev = 0, nk = 0, nv = 0;
        for (size_t i = 0; i < k.size(); ++i) ek += (kd[i] - k[i]) * (kd[i] - k[i]), nk += k[i] * k[i], ev += (vd[i] - v[i]) * (vd[i] - v[i]), nv += v[i] * v[i];
        // Relative MSE bounds measured on this tile with margin (the x20 outlier channel
        // stretches every token's K range; 2-bit per-channel RTN keeps ~(range/3)^2/12).
        EXPECT_LT(ek / nk, c.bk == 2 ? 0.45 : c.bk == 3 ? 0.06 : 0.02);
        EXPECT_LT(ev / nv, c.bv == 2 ? 0.25 : c.bv == 3 ? 0.06 : 0.02);
        if (!c.varn) {  // without VarN a constant token row is exact up to FP16 (VarN rescales channels first)
            for (int ch = 0; ch < 64; ++ch) EXPECT_NEAR(vd[size_t(7 * 64 + ch)], 1.5f, 2e-3f);
        }
    }
}

TEST(TurboQuant, CodebookIsLloydMaxForD64) {
    // Per-vector MSE of the scalar codebook on uniform random unit vectors (spec §4.4:
    // about 0.117 at 2 bits, 0.03 at 3, 0.009 at 4).
    std::mt19937 rng(9);
    std::normal_distribution<double> nd;
    for (auto [bits, want] : {std::pair{2, 0.117}, {3, 0.03}, {4, 0.009}}) {
        const auto cb = turboquant_codebook(64, bits);
        ASSERT_EQ(cb.size(), size_t(1) << bits);
        for (size_t i = 1; i < cb.size(); ++i) EXPECT_LT(cb[i - 1], cb[i]);
        double mse = 0;
        for (int r = 0; r < 400; ++r) {
            std::vector<double> u(64);
            double n = 0;
            for (auto& x : u) x = nd(rng), n += x * x;
            for (auto& x : u) {
                x /= std::sqrt(n);
                double best = 1e9;
                for (float c : cb) best = std::min(best, (x - c) * (x - c));
                mse += best;
            }
        }
        EXPECT_NEAR(mse / 400, want, want * 0.15) << bits;
    }
}


// The 8-bit mode's flash-attention and tinyBLAS pieces (codecs.h) and the f32 path's
// f16 lane dot: the scalar bodies (used below AVX2) against the AVX2 bodies, bit for bit,
// and each against an independent formula written here from its definition.
TEST(FlashPieces, ScalarAndSimdBodiesAgreeWithTheirDefinitions) {
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0, 1);
    auto f16 = [](float x) { return fp32_to_fp16(x); };
    auto h2f = [](uint16_t h) { return fp16_to_fp32(h); };
    const int64_t hd = 64, steps = 37;
    std::vector<uint16_t> v(size_t(steps * hd));
    for (auto& e : v) e = f16(nd(rng));
    std::vector<const uint16_t*> rows(static_cast<size_t>(steps));
    for (int64_t j = 0; j < steps; ++j) rows[size_t(j)] = v.data() + j * hd;
    std::vector<float> rescale(static_cast<size_t>(steps), 1.0f), w(static_cast<size_t>(steps)), p(static_cast<size_t>(steps));
    for (int64_t j = 0; j < steps; ++j) {
        w[size_t(j)] = std::exp(-std::fabs(nd(rng)));
        p[size_t(j)] = w[size_t(j)] / 7;
        if (j % 5 == 0) rescale[size_t(j)] = std::exp(-std::fabs(nd(rng)));
    }
    // Definitions.
    std::vector<float> want16(static_cast<size_t>(hd), 0.f), want32(static_cast<size_t>(hd), 0.5f);
    for (int64_t j = 0; j < steps; ++j)
        for (int64_t d = 0; d < hd; ++d) {
            float a = want16[size_t(d)];
            if (rescale[size_t(j)] != 1.0f) a = h2f(f16(a * rescale[size_t(j)]));
            want16[size_t(d)] = h2f(f16(std::fma(h2f(v[size_t(j * hd + d)]), w[size_t(j)], a)));
            want32[size_t(d)] = std::fma(h2f(v[size_t(j * hd + d)]), p[size_t(j)], want32[size_t(d)]);
        }
    std::vector<float> q(static_cast<size_t>(hd)), kt(size_t(hd * 64)), want_kq(64, 0.f);
    for (auto& e : q) e = nd(rng);
    for (auto& e : kt) e = h2f(f16(nd(rng)));
    for (int t = 0; t < 64; ++t)
        for (int64_t d = 0; d < hd; ++d) want_kq[size_t(t)] = std::fma(kt[size_t(d * 64 + t)], q[size_t(d)], want_kq[size_t(t)]);
    std::vector<uint16_t> a16(128), b16(128);
    for (auto& e : a16) e = f16(nd(rng));
    for (auto& e : b16) e = f16(nd(rng));
    float lanes[16] = {};
    for (int i = 0; i < 128; ++i) lanes[i % 16] = std::fma(h2f(a16[size_t(i)]), h2f(b16[size_t(i)]), lanes[i % 16]);
    float t3[8], t6[4];
    for (int i = 0; i < 8; ++i) t3[i] = lanes[i] + lanes[i + 8];
    for (int i = 0; i < 4; ++i) t6[i] = t3[i] + t3[i + 4];
    const float want_sgemm = (t6[0] + t6[2]) + (t6[1] + t6[3]);
    float l8[8] = {};
    for (int i = 0; i < 100; ++i) l8[i % 8] += q[size_t(i % 64)] * h2f(a16[size_t(i)]);
    const float want_lane = ((l8[0] + l8[4]) + (l8[1] + l8[5])) + ((l8[2] + l8[6]) + (l8[3] + l8[7]));
    std::vector<float> qq(100);
    for (int i = 0; i < 100; ++i) qq[size_t(i)] = q[size_t(i % 64)];

    for (cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2}) {
        if (int(isa) > int(cpu::detected_isa())) continue;
        cpu::force_isa(isa);
        SCOPED_TRACE(cpu::isa_name(isa));
        std::vector<float> acc16(static_cast<size_t>(hd), 0.f), acc32(static_cast<size_t>(hd), 0.5f);
        flash_accumulate_f16(acc16.data(), rows.data(), rescale.data(), w.data(), steps, hd);
        flash_accumulate_f32(acc32.data(), rows.data(), p.data(), steps, hd);
        EXPECT_EQ(acc16, want16);
        EXPECT_EQ(acc32, want32);
        float kq[64];
        flash_scores_f32(q.data(), kt.data(), hd, kq);
        EXPECT_EQ(std::vector<float>(kq, kq + 64), want_kq);
        const uint16_t* chunks[2] = {b16.data(), b16.data() + 64};
        EXPECT_EQ(dot_f16_sgemm_chunked(a16.data(), chunks, 2), want_sgemm);
        EXPECT_EQ(lane_dot_f16(qq.data(), a16.data(), 100), want_lane);
    }
    cpu::force_isa(cpu::detected_isa());
}

// The grouped form the f32 attention uses for the query heads of one KV head: each of the m
// results equals the single-row lane dot bit for bit, for every m (across the 8-row chunks
// of the AVX2 body) and every length (tails included), at each ISA level.
TEST(FlashPieces, MultiRowLaneDotEqualsSingleRow) {
    std::mt19937 rng(12);
    std::normal_distribution<float> nd(0, 1);
    std::vector<uint16_t> h(300);
    for (auto& e : h) e = fp32_to_fp16(nd(rng));
    std::vector<std::vector<float>> a(11, std::vector<float>(300));
    for (auto& r : a)
        for (auto& e : r) e = nd(rng);
    for (cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2}) {
        if (int(isa) > int(cpu::detected_isa())) continue;
        cpu::force_isa(isa);
        SCOPED_TRACE(cpu::isa_name(isa));
        for (int m : {1, 3, 4, 8, 9, 11})
            for (int64_t n : {1, 7, 8, 64, 65, 256, 300}) {
                std::vector<const float*> rows;
                for (int k = 0; k < m; ++k) rows.push_back(a[size_t(k)].data());
                std::vector<float> got(static_cast<size_t>(m));
                lane_dot_f16_multi(rows.data(), m, h.data(), n, got.data());
                for (int k = 0; k < m; ++k) {
                    const float want = lane_dot_f16(rows[size_t(k)], h.data(), n);
                    EXPECT_EQ(std::memcmp(&got[size_t(k)], &want, 4), 0) << "m " << m << " n " << n << " row " << k;
                }
            }
    }
    cpu::force_isa(cpu::detected_isa());
}

}  // namespace
}  // namespace strata::kv

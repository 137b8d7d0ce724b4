// Tests for tensor/dtype: the type table, fp16/bf16 conversion, dequantize_row and the
// reference quantizers. The oracle for blocks is the PyPI `gguf` package (numpy ports of
// ggml-quants.c); tools/make_quant_fixtures.py writes its outputs to tests/fixtures/quant/.
// All comparisons are bit-for-bit: both sides evaluate the same f32 expressions in the same
// order, and this file is built without FMA contraction (x86-64 baseline has no FMA).
#include "tensor/dtype.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

namespace strata {
namespace {

constexpr int64_t kRowLen = 256;  // tools/make_quant_fixtures.py ROW_LEN

// STRATA_SOURCE_DIR should be the repository root; the CMake helper currently passes the
// src/ folder, so accept both.
std::string fixture_path(const std::string& name) {
    std::string root = STRATA_SOURCE_DIR;
    if (!std::ifstream(root + "/tests/fixtures/quant/manifest.json").good()) root += "/..";
    return root + "/tests/fixtures/quant/" + name;
}

std::vector<uint8_t> read_bytes(const std::string& name) {
    std::ifstream f(fixture_path(name), std::ios::binary);
    EXPECT_TRUE(f.good()) << "missing fixture " << fixture_path(name)
                          << " (run tools/make_quant_fixtures.py)";
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

template <typename T>
std::vector<T> read_array(const std::string& name) {
    auto b = read_bytes(name);
    EXPECT_EQ(b.size() % sizeof(T), 0u) << name;
    std::vector<T> v(b.size() / sizeof(T));
    std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
    return v;
}

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

// ---------------------------------------------------------------------------------------
// Type table

TEST(DTypeInfo, BlockGeometryMatchesSpec) {
    struct Row { DType t; uint32_t bs, bytes; };
    const Row rows[] = {
        {DType::F32, 1, 4},      {DType::F16, 1, 2},      {DType::BF16, 1, 2},
        {DType::Q4_0, 32, 18},   {DType::Q4_1, 32, 20},   {DType::Q5_0, 32, 22},
        {DType::Q5_1, 32, 24},   {DType::Q8_0, 32, 34},   {DType::Q8_1, 32, 36},
        {DType::Q2_K, 256, 84},  {DType::Q3_K, 256, 110}, {DType::Q4_K, 256, 144},
        {DType::Q5_K, 256, 176}, {DType::Q6_K, 256, 210}, {DType::Q8_K, 256, 292},
        {DType::IQ4_NL, 32, 18},
    };
    for (const Row& r : rows) {
        auto i = dtype_info(uint32_t(r.t));
        ASSERT_TRUE(i) << uint32_t(r.t);
        EXPECT_EQ(i->block_size, r.bs) << i->name;
        EXPECT_EQ(i->block_bytes, r.bytes) << i->name;
    }
    EXPECT_EQ(dtype_row_bytes(DType::Q4_1, 576), 18u * 20u);
    EXPECT_EQ(dtype_row_bytes(DType::Q6_K, 1536), 6u * 210u);
    EXPECT_EQ(dtype_name(DType::Q4_K), "Q4_K");
}

TEST(DTypeInfo, RetiredAndUnknownIdsAreRejected) {
    for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 43u, 1000u, 0xFFFFFFFFu})
        EXPECT_FALSE(dtype_info(id)) << id;
}

TEST(DTypeInfo, UnimplementedTypesReportFalse) {
    std::vector<uint8_t> block(84, 0);
    float out[256];
    EXPECT_FALSE(dtype_info(uint32_t(DType::Q2_K))->can_dequantize);
    EXPECT_FALSE(dequantize_row(DType::Q2_K, block.data(), out, 256));
    EXPECT_FALSE(dequantize_row(DType::I32, block.data(), out, 1));
}

// ---------------------------------------------------------------------------------------
// fp16 / bf16

// Independent decoding straight from the IEEE definition (spec §2.1), in double.
double half_reference(uint16_t h) {
    const int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    double v = e == 0 ? std::ldexp(double(m), -24) : std::ldexp(1.0 + m / 1024.0, e - 15);
    if (e == 31) v = std::numeric_limits<double>::infinity();
    return s ? -v : v;
}

TEST(Fp16, DecodesEveryHalfExactly) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = fp16_to_fp32(uint16_t(h));
        const bool nan = ((h >> 10) & 0x1F) == 31 && (h & 0x3FF) != 0;
        if (nan) {
            EXPECT_TRUE(std::isnan(f)) << std::hex << h;
            EXPECT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;
            continue;
        }
        ASSERT_EQ(double(f), half_reference(uint16_t(h))) << std::hex << h;
        ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;  // -0 stays -0
    }
}

TEST(Fp16, RoundTripsEveryNonNanHalf) {
    for (uint32_t h = 0; h < 65536; ++h) {
        if (((h >> 10) & 0x1F) == 31 && (h & 0x3FF) != 0) continue;
        ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(uint16_t(h))), h) << std::hex << h;
    }
}

TEST(Fp16, RoundsToNearestEven) {
    EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3C00);      // tie -> even (down)
    EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);  // tie -> even (up)
    EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
    EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7BFF);  // just below the overflow threshold
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);   // rounds up to inf
    EXPECT_EQ(fp32_to_fp16(-1e10f), 0xFC00);
    EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
    EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
}

TEST(Fp16, Subnormals) {
    EXPECT_EQ(fp32_to_fp16(0x1p-24f), 0x0001);          // smallest subnormal
    EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);          // half of it: tie -> even zero
    EXPECT_EQ(fp32_to_fp16(0x1.000002p-25f), 0x0001);   // just above the tie
    EXPECT_EQ(fp32_to_fp16(3 * 0x1p-25f), 0x0002);      // 1.5 ulp: tie -> even (2)
    EXPECT_EQ(fp32_to_fp16(-0x1p-14f + 0x1p-24f), 0x83FF);  // largest subnormal, negative
    EXPECT_EQ(fp32_to_fp16(0x1p-14f), 0x0400);          // smallest normal
    EXPECT_EQ(fp32_to_fp16(1e-30f), 0x0000);
    EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
    EXPECT_EQ(fp16_to_fp32(0x0001), 0x1p-24f);
    EXPECT_EQ(fp16_to_fp32(0x83FF), -1023 * 0x1p-24f);
}

TEST(Fp16, NanBecomesQuietNan) {
    // ggml's scalar fp32->fp16 maps every NaN to 0x7E00 with the sign kept.
    EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()), 0x7E00);
    EXPECT_EQ(fp32_to_fp16(from_bits(0x7F800001u)), 0x7E00);  // signalling NaN
    EXPECT_EQ(fp32_to_fp16(from_bits(0xFFC00000u)), 0xFE00);
    EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
    EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7C01)));
    EXPECT_TRUE(std::isinf(fp16_to_fp32(0x7C00)));
}

TEST(Bf16, DecodeIsTheUpperHalfOfAnF32) {
    for (uint32_t h = 0; h < 65536; ++h)
        ASSERT_EQ(bits(bf16_to_fp32(uint16_t(h))), h << 16) << std::hex << h;
}

TEST(Bf16, EncodeRoundsToNearestEvenAndQuietsNan) {
    EXPECT_EQ(fp32_to_bf16(from_bits(0x3F808000u)), 0x3F80);  // tie -> even (down)
    EXPECT_EQ(fp32_to_bf16(from_bits(0x3F818000u)), 0x3F82);  // tie -> even (up)
    EXPECT_EQ(fp32_to_bf16(from_bits(0x3F808001u)), 0x3F81);
    EXPECT_EQ(fp32_to_bf16(from_bits(0x7F7FFFFFu)), 0x7F80);  // FLT_MAX rounds to inf
    EXPECT_EQ(fp32_to_bf16(from_bits(0x00008000u)), 0x0000);  // subnormal tie -> even
    EXPECT_EQ(fp32_to_bf16(from_bits(0x80018000u)), 0x8002);
    EXPECT_EQ(fp32_to_bf16(from_bits(0xFF800000u)), 0xFF80);
    EXPECT_EQ(fp32_to_bf16(from_bits(0x7F800001u)), 0x7FC0);  // sNaN -> quiet, not inf
    EXPECT_EQ(fp32_to_bf16(from_bits(0xFFFFFFFFu)), 0xFFFF);  // NaN: truncated, never rounded
}

// fp32 -> fp16 against numpy's astype(float16) and fp32 -> bf16 against gguf's BF16
// quantizer, on 2048 values covering every binade, exact halfway points and the edges.
TEST(Fp16, ConversionMatchesNumpyAndGguf) {
    auto x = read_array<float>("convert_input.f32");
    auto h = read_array<uint16_t>("convert_fp16.u16");
    auto b = read_array<uint16_t>("convert_bf16.u16");
    ASSERT_EQ(x.size(), 2048u);
    ASSERT_EQ(h.size(), x.size());
    ASSERT_EQ(b.size(), x.size());
    int bad16 = 0, badbf = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        if (fp32_to_fp16(x[i]) != h[i] && bad16++ < 5)
            ADD_FAILURE() << "fp16 #" << i << " x=" << x[i] << " (0x" << std::hex << bits(x[i])
                          << ") got 0x" << fp32_to_fp16(x[i]) << " want 0x" << h[i];
        if (fp32_to_bf16(x[i]) != b[i] && badbf++ < 5)
            ADD_FAILURE() << "bf16 #" << i << " x=0x" << std::hex << bits(x[i]) << " got 0x"
                          << fp32_to_bf16(x[i]) << " want 0x" << b[i];
    }
    EXPECT_EQ(bad16, 0);
    EXPECT_EQ(badbf, 0);
}

// ---------------------------------------------------------------------------------------
// dequantize_row against gguf.quants.dequantize

struct FixtureType { const char* name; DType type; };

class DequantFixture : public ::testing::TestWithParam<FixtureType> {};

TEST_P(DequantFixture, MatchesGgufBitForBit) {
    const FixtureType& ft = GetParam();
    const std::string name = ft.name;
    const DTypeInfo info = dtype_info_checked(ft.type);
    auto raw = read_bytes(name + ".bin");
    auto want = read_array<float>(name + ".f32");
    ASSERT_FALSE(want.empty());
    ASSERT_EQ(want.size() % kRowLen, 0u);
    const size_t n_rows = want.size() / kRowLen;
    const size_t row_bytes = dtype_row_bytes(ft.type, kRowLen);
    ASSERT_EQ(raw.size(), n_rows * row_bytes) << "block size of " << info.name;

    std::vector<float> got(want.size(), -12345.0f);
    for (size_t r = 0; r < n_rows; ++r)
        ASSERT_TRUE(dequantize_row(ft.type, raw.data() + r * row_bytes, got.data() + r * kRowLen,
                                   kRowLen));
    int mismatches = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        if (bits(got[i]) == bits(want[i])) continue;
        if (mismatches++ < 5)
            ADD_FAILURE() << name << " row " << i / kRowLen << " value " << i % kRowLen
                          << ": got " << got[i] << " (0x" << std::hex << bits(got[i])
                          << ") want " << want[i] << " (0x" << bits(want[i]) << ")";
    }
    EXPECT_EQ(mismatches, 0) << "of " << want.size();
}

TEST_P(DequantFixture, ListedInManifest) {
    auto m = read_bytes("manifest.json");
    const std::string text(m.begin(), m.end());
    const std::string key = std::string("\"type\": \"") + GetParam().name + "\"";
    const std::string id = "\"ggml_id\": " + std::to_string(uint32_t(GetParam().type)) + ",";
    const size_t at = text.find(key);
    ASSERT_NE(at, std::string::npos) << key;
    EXPECT_NE(text.find(id, at), std::string::npos) << id;
}

INSTANTIATE_TEST_SUITE_P(
    Gguf, DequantFixture,
    ::testing::Values(FixtureType{"F32", DType::F32}, FixtureType{"F16", DType::F16},
                      FixtureType{"BF16", DType::BF16}, FixtureType{"Q4_0", DType::Q4_0},
                      FixtureType{"Q4_1", DType::Q4_1}, FixtureType{"Q5_0", DType::Q5_0},
                      FixtureType{"Q5_1", DType::Q5_1}, FixtureType{"Q8_0", DType::Q8_0},
                      FixtureType{"IQ4_NL", DType::IQ4_NL}, FixtureType{"Q4_K", DType::Q4_K},
                      FixtureType{"Q5_K", DType::Q5_K}, FixtureType{"Q6_K", DType::Q6_K}),
    [](const ::testing::TestParamInfo<FixtureType>& p) { return std::string(p.param.name); });

// gguf 0.19 has no Q8_K dequantizer, so Q8_K is checked by hand: y = d * qs, d an f32.
TEST(Dequant, Q8KByHand) {
    BlockQ8_K b{};
    b.d = -0.375f;
    for (int i = 0; i < 256; ++i) b.qs[i] = int8_t(i - 128);
    float y[256];
    ASSERT_TRUE(dequantize_row(DType::Q8_K, &b, y, 256));
    for (int i = 0; i < 256; ++i) ASSERT_EQ(y[i], -0.375f * float(i - 128)) << i;
}

// Spec §2.2: bytes 00 38 00 BC 21 ... -> d = 0.5, m = -1; qs[0] = 0x21 gives y[0] = -0.5,
// y[16] = 0.0; the other (zero) nibbles give m = -1.
TEST(Dequant, Q4_1SpecWorkedExample) {
    uint8_t block[20] = {0x00, 0x38, 0x00, 0xBC, 0x21};
    float y[32];
    ASSERT_TRUE(dequantize_row(DType::Q4_1, block, y, 32));
    EXPECT_EQ(y[0], -0.5f);
    EXPECT_EQ(y[16], 0.0f);
    for (int i = 0; i < 32; ++i) {
        if (i != 0 && i != 16) {
            EXPECT_EQ(y[i], -1.0f) << i;
        }
    }
}

// Spec §8: scales bytes all 0x41 give sc = mn = 1 for sub-blocks 0..3, sc = 17 and mn = 20
// for 4..7. Sub-block j covers y[32j .. 32j+31]: even j from low nibbles, odd from high.
TEST(Dequant, Q4_KSpecScaleExample) {
    BlockQ4_K b{};
    std::memset(b.scales, 0x41, sizeof(b.scales));
    b.d = fp32_to_fp16(1.0f);
    b.dmin = fp32_to_fp16(0.0f);
    std::memset(b.qs, 0x11, sizeof(b.qs));  // every nibble = 1, so y = sc
    float y[256];
    ASSERT_TRUE(dequantize_row(DType::Q4_K, &b, y, 256));
    for (int j = 0; j < 8; ++j)
        for (int l = 0; l < 32; ++l) ASSERT_EQ(y[32 * j + l], j < 4 ? 1.0f : 17.0f) << j;

    b.dmin = fp32_to_fp16(1.0f);
    std::memset(b.qs, 0x00, sizeof(b.qs));  // every nibble = 0, so y = -mn
    ASSERT_TRUE(dequantize_row(DType::Q4_K, &b, y, 256));
    for (int j = 0; j < 8; ++j)
        for (int l = 0; l < 32; ++l) ASSERT_EQ(y[32 * j + l], j < 4 ? -1.0f : -20.0f) << j;
}

// Q5_K uses the same scale packing; the fifth bit of sub-block j comes from qh bit j.
TEST(Dequant, Q5_KHighBits) {
    BlockQ5_K b{};
    b.d = fp32_to_fp16(1.0f);
    std::memset(b.scales, 0x01, 4);        // sc = 1 for j < 4, mn = 0
    std::memset(b.qh, 0x05, sizeof(b.qh));  // bits 0 and 2: sub-blocks 0 and 2 get +16
    float y[256];
    ASSERT_TRUE(dequantize_row(DType::Q5_K, &b, y, 256));
    for (int j = 0; j < 4; ++j) EXPECT_EQ(y[32 * j], (j == 0 || j == 2) ? 16.0f : 0.0f) << j;
}

// ---------------------------------------------------------------------------------------
// Reference quantizers against gguf.quants.quantize (Q8_1: gguf's Q8_0 plus s, see the
// fixture script). Rows: gaussian, outliers, zeros, constant, .5 ties, tiny (subnormal
// scales), large, equal-magnitude +/- extremes.

struct QuantCase {
    const char* name;
    DType type;
    void (*fn)(const float*, void*, int64_t);
};

class QuantizeFixture : public ::testing::TestWithParam<QuantCase> {};

TEST_P(QuantizeFixture, MatchesGgufBitForBit) {
    const QuantCase& qc = GetParam();
    auto x = read_array<float>("quantize_input.f32");
    auto want = read_bytes(std::string("quantize_") + qc.name + ".bin");
    ASSERT_EQ(x.size() % kRowLen, 0u);
    const size_t n_rows = x.size() / kRowLen;
    const size_t row_bytes = dtype_row_bytes(qc.type, kRowLen);
    ASSERT_EQ(want.size(), n_rows * row_bytes);
    std::vector<uint8_t> got(want.size(), 0xAA);
    for (size_t r = 0; r < n_rows; ++r)
        qc.fn(x.data() + r * kRowLen, got.data() + r * row_bytes, kRowLen);
    const size_t bb = dtype_info_checked(qc.type).block_bytes;
    int bad = 0;
    for (size_t blk = 0; blk < want.size() / bb; ++blk) {
        if (std::memcmp(got.data() + blk * bb, want.data() + blk * bb, bb) == 0) continue;
        if (bad++ < 5) {
            size_t k = 0;
            while (got[blk * bb + k] == want[blk * bb + k]) ++k;
            ADD_FAILURE() << qc.name << " row " << blk * 32 / kRowLen << " block "
                          << blk % (kRowLen / 32) << " byte " << k << ": got "
                          << int(got[blk * bb + k]) << " want " << int(want[blk * bb + k]);
        }
    }
    EXPECT_EQ(bad, 0);
}

// Quantize -> dequantize stays within half a step (Q8_0) / one step (4-bit) of the input.
TEST_P(QuantizeFixture, RoundTripErrorIsBounded) {
    const QuantCase& qc = GetParam();
    auto x = read_array<float>("quantize_input.f32");
    ASSERT_EQ(x.size() % kRowLen, 0u);
    std::vector<uint8_t> q(dtype_row_bytes(qc.type, kRowLen));
    std::vector<float> y(kRowLen);
    for (size_t r = 0; r < x.size() / kRowLen; ++r) {
        const float* xr = x.data() + r * kRowLen;
        qc.fn(xr, q.data(), kRowLen);
        ASSERT_TRUE(dequantize_row(qc.type, q.data(), y.data(), kRowLen));
        for (int64_t b = 0; b < kRowLen / 32; ++b) {
            float lo = xr[32 * b], hi = xr[32 * b];
            for (int j = 0; j < 32; ++j) lo = std::min(lo, xr[32 * b + j]), hi = std::max(hi, xr[32 * b + j]);
            const float amax = std::max(std::fabs(lo), std::fabs(hi));
            // One code step, plus the fp16 rounding of the scale (2^-11 relative, or half a
            // subnormal ulp, 2^-25, times up to 128 codes when the scale is subnormal).
            const float step = (qc.type == DType::Q4_1) ? (hi - lo) / 15.f
                             : (qc.type == DType::Q4_0) ? amax / 8.f
                                                        : amax / 127.f;
            const float tol = step * 1.01f + amax * 0x1p-7f + 128 * 0x1p-25f;
            for (int j = 0; j < 32; ++j)
                ASSERT_LE(std::fabs(y[32 * b + j] - xr[32 * b + j]), tol)
                    << qc.name << " row " << r << " block " << b << " value " << j;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
    Gguf, QuantizeFixture,
    ::testing::Values(QuantCase{"Q8_0", DType::Q8_0, quantize_row_q8_0},
                      QuantCase{"Q8_1", DType::Q8_1, quantize_row_q8_1},
                      QuantCase{"Q4_0", DType::Q4_0, quantize_row_q4_0},
                      QuantCase{"Q4_1", DType::Q4_1, quantize_row_q4_1}),
    [](const ::testing::TestParamInfo<QuantCase>& p) { return std::string(p.param.name); });

TEST(Quantize, Q8_1SumFieldIsScaleTimesCodeSum) {
    float x[32];
    for (int i = 0; i < 32; ++i) x[i] = float(i) - 10.25f;
    BlockQ8_1 b;
    quantize_row_q8_1(x, &b, 32);
    int sum = 0;
    for (int8_t q : b.qs) sum += q;
    const float d = 20.75f / 127.f;  // amax = 31 - 10.25
    EXPECT_EQ(b.d, fp32_to_fp16(d));
    EXPECT_EQ(b.s, fp32_to_fp16(float(sum) * d));
}

}  // namespace
}  // namespace strata

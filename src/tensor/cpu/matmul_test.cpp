// matmul() tests across kernel families: batch-1 matvec, the packed-tile GEMM for
// batches > 1 and the vec-dot fallback, at every ISA level, for row counts that are and
// are not multiples of the 4-row tile, batches 1, 2, 3, 7, 64 and 301, and 1-3 threads.
//
// Tolerances: in the default (8-bit activation) mode every output must equal the vec-dot
// of the same ISA level on the same quantized activations exactly (the batched kernels
// keep its per-block integer dots and float order; at AVX2 and above that is llama.cpp's
// AVX2 arithmetic; K-quants: the scalar definition of llama.cpp's form for that matrix,
// batch and token, kquant.h), and be within 1e-3·sum_j |x̂_j|·(|w_j| + max|w|) of the double dot of
// the dequantized weights w and dequantized activations x̂ (float rounding, plus Q8_1's
// f16-rounded block sums times the Q4_1/Q5_1 minimum, which max|w| bounds).
// Exact mode: within 1e-5·sum_j |w_j·x_j| of the dequantized weights · f32 activations.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "tensor/cpu/kernels.h"
#include "tensor/cpu/kernels_test_util.h"
#include "tensor/cpu/kquant.h"

namespace strata::cpu {
namespace {

using test_util::random_row;
using test_util::ref_dot;

struct Problem {
    DType t;
    int64_t rows, cols, batch;
    std::vector<uint8_t> w;  // rows x row_bytes
    size_t row_bytes;
    std::vector<float> x;    // batch x cols
};

Problem make_problem(DType t, int64_t rows, int64_t cols, int64_t batch, std::mt19937& rng) {
    Problem p{t, rows, cols, batch, {}, dtype_row_bytes(t, uint64_t(cols)), {}};
    for (int64_t r = 0; r < rows; ++r) {
        auto row = random_row(t, cols, rng);
        p.w.insert(p.w.end(), row.begin(), row.end());
    }
    std::normal_distribution<float> nd(0, 1);
    p.x.resize(size_t(batch * cols));
    for (auto& v : p.x) v = nd(rng);
    p.x[0] = 30.f;  // an outlier, as SmolLM2's residual stream has
    if (batch > 2) std::fill(p.x.begin() + cols, p.x.begin() + 2 * cols, 0.f);  // an all-zero token
    return p;
}

// y[b][r] by the ISA level's vec-dot on the same quantized activations. K-quants in the
// 8-bit mode: the scalar definition of the form llama.cpp uses for this row count, batch
// size and token (kquant.h), on activations quantized as that form's are.
std::vector<float> vec_dot_loop(const Problem& p, bool exact) {
    if (!exact && is_kquant(p.t)) {
        std::vector<float> y(size_t(p.batch * p.rows));
        std::vector<BlockQ8_K> xq(size_t(p.cols / 256));
        for (int64_t b = 0; b < p.batch; ++b) {
            const KqForm f = kq_form(p.t, p.rows, p.batch, b);
            quantize_row_q8_k_ref(p.x.data() + b * p.cols, xq.data(), p.cols, f == KqForm::kGemm);
            for (int64_t r = 0; r < p.rows; ++r)
                y[size_t(b * p.rows + r)] = kq_dot_scalar(p.t, f, p.cols, p.w.data() + size_t(r) * p.row_bytes, xq.data());
        }
        return y;
    }
    Acts a;
    prepare_acts(p.x.data(), p.batch, p.cols, p.t, exact, &a);
    const VecDotFn dot = vec_dot_fn(p.t, exact);
    std::vector<float> y(size_t(p.batch * p.rows));
    for (int64_t b = 0; b < p.batch; ++b)
        for (int64_t r = 0; r < p.rows; ++r) y[size_t(b * p.rows + r)] = dot(p.cols, p.w.data() + size_t(r) * p.row_bytes, a.row(b));
    return y;
}

std::vector<float> run_matmul(const Problem& p, bool exact, ThreadPool& pool) {
    std::vector<float> y(size_t(p.batch * p.rows), NAN);
    Acts scratch;
    matmul(p.t, p.w.data(), p.row_bytes, p.rows, p.x.data(), p.batch, p.cols, y.data(), p.rows, exact, pool, &scratch);
    return y;
}

std::vector<Isa> isa_levels() {
    std::vector<Isa> v;
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni})
        if (int(isa) <= int(detected_isa())) v.push_back(isa);
    return v;
}

class Matmul : public ::testing::TestWithParam<DType> {
protected:
    void TearDown() override { force_isa(detected_isa()); }
};

TEST_P(Matmul, AllPathsMatchVecDotAndReference) {
    const DType t = GetParam();
    const bool kquant = t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K;
    const int64_t cols = kquant ? 512 : 576;
    std::mt19937 rng(99);
    ThreadPool pool1(1), pool2(2), pool3(3);
    for (int64_t rows : {1, 3, 4, 5, 8, 13, 67}) {  // 8: Q4_K takes the repack forms
        for (int64_t batch : {1, 2, 3, 7, 64, 301}) {  // 301: more than one 256-token chunk
            const Problem p = make_problem(t, rows, cols, batch, rng);
            const size_t ny = size_t(batch * rows);
            std::vector<double> ref(ny), mag(ny), refq(ny), tolq(ny);
            Acts xq;  // the 8-bit activations, dequantized
            prepare_acts(p.x.data(), batch, cols, t, false, &xq);
            std::vector<float> xh(p.x.size()), wf(static_cast<size_t>(cols));
            for (int64_t b = 0; b < batch; ++b) ASSERT_TRUE(dequantize_row(xq.type, xq.row(b), &xh[size_t(b * cols)], cols));
            for (int64_t r = 0; r < rows; ++r) {
                const uint8_t* wr = p.w.data() + size_t(r) * p.row_bytes;
                ASSERT_TRUE(dequantize_row(t, wr, wf.data(), cols));
                double wmax = 0;
                for (float v : wf) wmax = std::max(wmax, std::fabs(double(v)));
                for (int64_t b = 0; b < batch; ++b) {
                    const size_t k = size_t(b * rows + r);
                    double unused;
                    ref[k] = ref_dot(t, wr, p.x.data() + b * cols, cols, &mag[k]);
                    refq[k] = ref_dot(t, wr, &xh[size_t(b * cols)], cols, &unused);
                    for (int64_t j = 0; j < cols; ++j)
                        tolq[k] += std::fabs(double(xh[size_t(b * cols + j)])) * (std::fabs(double(wf[size_t(j)])) + wmax);
                    tolq[k] = 1e-3 * tolq[k] + 1e-5;
                }
            }
            for (Isa isa : isa_levels()) {
                force_isa(isa);
                const std::string where = std::string(isa_name(isa)) + " rows=" + std::to_string(rows) +
                                          " batch=" + std::to_string(batch);
                const auto want = vec_dot_loop(p, false);
                for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
                    const auto got = run_matmul(p, false, *pool);
                    for (size_t k = 0; k < got.size(); ++k) {
                        ASSERT_EQ(got[k], want[k]) << where << " threads=" << pool->n_threads() << " k=" << k;
                        ASSERT_NEAR(got[k], refq[k], tolq[k]) << where << " k=" << k;
                    }
                }
                const auto got = run_matmul(p, true, pool2);
                for (size_t k = 0; k < got.size(); ++k)
                    ASSERT_NEAR(got[k], ref[k], 1e-5 * mag[k] + 1e-6) << "exact " << where << " k=" << k;
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, Matmul,
                         ::testing::Values(DType::F32, DType::F16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                           DType::Q8_0, DType::IQ4_NL, DType::Q4_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// f32 mode: every path (AVX-512 decode for 1..8 tokens, AVX-512 and AVX2 tiles, scalar
// loop) equals the scalar definition of the 16-lane order, f32_lane_dot, bit for bit per
// (row, token), at every ISA level and thread count; row counts around the 4- and 2-row
// passes, every decode batch size and a few beyond, and row lengths with a tail for the
// types that allow one. The definition itself is checked against a double dot.
class F32Mode : public ::testing::TestWithParam<DType> {
protected:
    void TearDown() override { force_isa(detected_isa()); }
};

TEST_P(F32Mode, EveryPathEqualsTheLaneOrderBitForBit) {
    const DType t = GetParam();
    const auto info = dtype_info_checked(t);
    std::vector<int64_t> col_sizes;
    if (info.block_size == 256) col_sizes = {256, 768};
    else if (info.block_size == 32) col_sizes = {32, 576};
    else col_sizes = {16, 19, 40, 576, 1000};  // f32/f16/bf16: tails of every kind
    std::mt19937 rng(2024);
    ThreadPool pool1(1), pool2(2), pool3(3);
    for (int64_t cols : col_sizes) {
        for (int64_t rows : {1, 2, 3, 4, 5, 7, 9, 17}) {
            for (int64_t batch : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 64}) {
                const Problem p = make_problem(t, rows, cols, batch, rng);
                std::vector<float> want(size_t(batch * rows));
                for (int64_t b = 0; b < batch; ++b)
                    for (int64_t r = 0; r < rows; ++r) {
                        const uint8_t* wr = p.w.data() + size_t(r) * p.row_bytes;
                        const float* xb = p.x.data() + b * cols;
                        want[size_t(b * rows + r)] = f32_lane_dot(t, wr, xb, cols);
                        double mag;
                        const double ref = ref_dot(t, wr, xb, cols, &mag);
                        ASSERT_NEAR(want[size_t(b * rows + r)], ref, 1e-5 * mag + 1e-6);
                    }
                for (Isa isa : isa_levels()) {
                    force_isa(isa);
                    for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
                        const auto got = run_matmul(p, true, *pool);
                        for (size_t k = 0; k < got.size(); ++k)
                            ASSERT_EQ(got[k], want[k]) << isa_name(isa) << " cols=" << cols << " rows=" << rows
                                                       << " batch=" << batch << " threads=" << pool->n_threads()
                                                       << " k=" << k;
                    }
                }
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, F32Mode,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1,
                                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::IQ4_NL, DType::Q4_K,
                                           DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// The 16-lane order, written out independently of F32Lanes: the tail is zero-padded and
// the reduction tree is the one documented in kernels.h.
TEST(F32LaneOrder, MatchesItsWrittenDefinition) {
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0, 1);
    for (int64_t n : {1, 7, 16, 17, 33, 100, 576}) {
        std::vector<float> w(static_cast<size_t>(n)), x(static_cast<size_t>(n));
        for (auto& v : w) v = nd(rng);
        for (auto& v : x) v = nd(rng) * 100.f;
        float lane[16] = {};
        const int64_t padded = (n + 15) / 16 * 16;
        for (int64_t k = 0; k < padded; ++k)
            lane[k % 16] = std::fma(k < n ? w[size_t(k)] : 0.f, k < n ? x[size_t(k)] : 0.f, lane[k % 16]);
        float s8[8];
        for (int i = 0; i < 8; ++i) s8[i] = lane[i] + lane[i + 8];
        const float want = ((s8[0] + s8[4]) + (s8[2] + s8[6])) + ((s8[1] + s8[5]) + (s8[3] + s8[7]));
        std::vector<uint8_t> wb(size_t(n) * 4);
        std::memcpy(wb.data(), w.data(), wb.size());
        EXPECT_EQ(f32_lane_dot(DType::F32, wb.data(), x.data(), n), want) << "n=" << n;
    }
}

// The register-tile variants the kernel lab compares (not all are the default), driven
// directly: every token-pair count, bit-identical to the AVX2 vec-dot.
class GemmVariants : public ::testing::TestWithParam<DType> {};

TEST_P(GemmVariants, EveryTileWidthMatchesVecDot) {
    const DType t = GetParam();
    if (detected_isa() < Isa::kAvx2) GTEST_SKIP() << "no AVX2";
    std::mt19937 rng(7);
    const int64_t cols = 1536, rows = 7, batch = 19;  // 19 tokens: 9 full pairs and a half
    const Problem p = make_problem(t, rows, cols, batch, rng);
    force_isa(Isa::kAvx2);
    const auto want = vec_dot_loop(p, false);
    struct Variant { std::string name; GemmTileFn fn; bool offset_q8; };
    std::vector<Variant> vs;
    for (int tp : {1, 2}) vs.push_back({"avx2 tp" + std::to_string(tp), avx2_gemm_tile(t, tp), false});
    if (detected_isa() >= Isa::kAvx512)
        for (int tp : {1, 2, 3, 4}) vs.push_back({"avx512 tp" + std::to_string(tp), avx512_gemm_tile(t, false, tp), false});
    if (detected_isa() >= Isa::kAvx512Vnni)
        for (int tp : {1, 2, 3, 4}) vs.push_back({"vnni tp" + std::to_string(tp), avx512_gemm_tile(t, true, tp), true});
    Acts a;
    prepare_acts(p.x.data(), batch, cols, t, false, &a);
    size_packed_acts(&a);
    pack_acts(&a, 0, batch);
    const int64_t nb = cols / 32;
    std::vector<uint8_t> codes(size_t(nb) * kGemmRows * 32 + 64);
    std::vector<float> d(size_t(nb) * kGemmRows), m(d.size());
    for (const auto& v : vs) {
        ASSERT_NE(v.fn, nullptr) << v.name;
        std::vector<float> y(size_t(batch * rows), NAN);
        for (int64_t row0 = 0; row0 < rows; row0 += kGemmRows) {
            PackedTile tile;
            tile.codes = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(codes.data()) + 63) & ~uintptr_t(63));
            tile.d = d.data(), tile.m = m.data();
            const int n = int(std::min<int64_t>(kGemmRows, rows - row0));
            pack_weight_tile(t, v.offset_q8, p.w.data() + size_t(row0) * p.row_bytes, p.row_bytes, n, nb, &tile);
            // The AVX2 packer (active here) and the scalar one lay out the same bytes.
            std::vector<uint8_t> c2(codes.size());
            std::vector<float> d2(d.size()), m2(m.size());
            PackedTile ref = tile;
            ref.codes = c2.data(), ref.d = d2.data(), ref.m = m2.data();
            pack_weight_tile_scalar(t, v.offset_q8, p.w.data() + size_t(row0) * p.row_bytes, p.row_bytes, n, nb, &ref);
            ASSERT_EQ(0, std::memcmp(tile.codes, ref.codes, size_t(nb) * kGemmRows * 32)) << v.name;
            ASSERT_EQ(0, std::memcmp(tile.d, ref.d, d.size() * sizeof(float))) << v.name;
            ASSERT_EQ(0, std::memcmp(tile.m, ref.m, m.size() * sizeof(float))) << v.name;
            ASSERT_EQ(tile.offset, ref.offset);
            ASSERT_EQ(tile.signed_codes, ref.signed_codes);
            v.fn(tile, a.packed, 0, a.packed.n_pairs, y.data(), rows, row0, n);
        }
        for (size_t k = 0; k < y.size(); ++k) ASSERT_EQ(y[k], want[k]) << v.name << " k=" << k;
    }
    force_isa(detected_isa());
}

INSTANTIATE_TEST_SUITE_P(GemmTypes, GemmVariants,
                         ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace strata::cpu

// K-quants in the 8-bit mode against llama.cpp itself: testdata/kquant_ggml.bin holds real
// Gemma 3 270M Q4_K / Q6_K rows (and ggml-quantized Q5_K rows), activations, and what
// llama.cpp's ggml computed from them (testdata/ggml_kquant_ref.cpp wrote it; nothing in it
// comes from Strata). Every ISA level and thread count must reproduce ggml's Q8_K bytes,
// its vec_dot values and its mul_mat outputs bit for bit, for batch sizes 1-9, 12 and 17
// (vec_dot below 8 tokens, the tiled kernel from 8, the q4_K 8x8 repack for row counts
// divisible by 8) and odd row counts. Then, on random rows, every SIMD kernel equals the
// scalar definition in every form, and the real Gemma rows dequantize as the `gguf`
// package does (testdata/gemma_rows.bin).
#include "tensor/cpu/kquant.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "tensor/cpu/kernels_test_util.h"

namespace strata::cpu {
namespace {

std::vector<uint8_t> read_testdata(const std::string& name) {
    std::string root = STRATA_SOURCE_DIR;
    std::ifstream f(root + "/src/tensor/cpu/testdata/" + name, std::ios::binary);
    EXPECT_TRUE(f.good()) << "missing fixture src/tensor/cpu/testdata/" << name;
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

struct Reader {
    const std::vector<uint8_t>& b;
    size_t at = 0;
    uint32_t u32() {
        uint32_t v;
        std::memcpy(&v, take(4), 4);
        return v;
    }
    const uint8_t* take(size_t n) {
        EXPECT_LE(at + n, b.size());
        const uint8_t* p = b.data() + at;
        at += n;
        return p;
    }
    template <typename T>
    std::vector<T> vec(size_t n) {
        std::vector<T> v(n);
        std::memcpy(v.data(), take(n * sizeof(T)), n * sizeof(T));
        return v;
    }
};

// One set of kquant_ggml.bin: a weight matrix, kMaxBatch tokens of activations, ggml's
// Q8_K bytes and vec_dot values for them, and ggml_mul_mat's output for each batch size b
// (on the first b tokens).
struct GgmlSet {
    DType type;
    int64_t rows, cols, max_batch;
    bool repack;
    std::vector<uint8_t> w, xq;
    std::vector<float> x, yv;  // x: [max_batch][cols]; yv: [max_batch][rows]
    std::vector<int64_t> batches;
    std::vector<std::vector<float>> yg;  // per batch: [b][rows]
};

std::vector<GgmlSet> load_ggml_sets() {
    static const std::vector<uint8_t> raw = read_testdata("kquant_ggml.bin");
    std::vector<GgmlSet> sets;
    if (raw.size() < 8 || std::memcmp(raw.data(), "SKQ2", 4) != 0) {
        ADD_FAILURE() << "kquant_ggml.bin: bad header";
        return sets;
    }
    Reader r{raw, 4};
    const uint32_t n = r.u32();
    for (uint32_t i = 0; i < n; ++i) {
        GgmlSet s;
        s.type = DType(r.u32());
        s.rows = r.u32(), s.cols = r.u32(), s.repack = r.u32() != 0, s.max_batch = r.u32();
        const uint32_t nb = r.u32();
        for (uint32_t k = 0; k < nb; ++k) s.batches.push_back(r.u32());
        s.w = r.vec<uint8_t>(dtype_row_bytes(s.type, uint64_t(s.cols)) * size_t(s.rows));
        s.x = r.vec<float>(size_t(s.max_batch * s.cols));
        s.xq = r.vec<uint8_t>(dtype_row_bytes(DType::Q8_K, uint64_t(s.cols)) * size_t(s.max_batch));
        s.yv = r.vec<float>(size_t(s.max_batch * s.rows));
        for (int64_t b : s.batches) s.yg.push_back(r.vec<float>(size_t(b * s.rows)));
        sets.push_back(std::move(s));
    }
    EXPECT_EQ(r.at, raw.size());
    return sets;
}

std::vector<Isa> isa_levels() {
    std::vector<Isa> v;
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni})
        if (int(isa) <= int(detected_isa())) v.push_back(isa);
    return v;
}

class KquantGgml : public ::testing::Test {
protected:
    void TearDown() override { force_isa(detected_isa()); }
};

TEST_F(KquantGgml, FixtureCoversEveryForm) {
    const auto sets = load_ggml_sets();
    ASSERT_EQ(sets.size(), 5u);
    int repacked = 0;
    for (const auto& s : sets) repacked += s.repack;
    EXPECT_EQ(repacked, 2);
    for (const auto& s : sets) EXPECT_EQ(s.repack, kq_form(s.type, s.rows, 1, 0) == KqForm::kGemv);
}

// Q8_K activations: ggml's quantize_row_q8_K (the reference; ggml leaves bsums unwritten
// for an all-zero block, so those are not compared).
TEST_F(KquantGgml, ActivationQuantizerMatchesGgml) {
    for (const auto& s : load_ggml_sets()) {
        const size_t qrb = dtype_row_bytes(DType::Q8_K, uint64_t(s.cols));
        for (int64_t t = 0; t < s.max_batch; ++t) {
            std::vector<BlockQ8_K> got(size_t(s.cols / 256));
            for (Isa isa : isa_levels()) {
                force_isa(isa);
                quantize_act_row(s.x.data() + t * s.cols, DType::Q8_K, got.data(), s.cols);
                for (size_t i = 0; i < got.size(); ++i) {
                    BlockQ8_K want;
                    std::memcpy(&want, s.xq.data() + size_t(t) * qrb + i * sizeof(BlockQ8_K), sizeof want);
                    ASSERT_EQ(bits(got[i].d), bits(want.d)) << "token " << t << " block " << i;
                    ASSERT_EQ(0, std::memcmp(got[i].qs, want.qs, 256)) << "token " << t << " block " << i;
                    if (want.d != 0) {
                        ASSERT_EQ(0, std::memcmp(got[i].bsums, want.bsums, 32)) << "token " << t;
                    }
                }
            }
        }
    }
}

// ggml_vec_dot_qN_K_q8_K on ggml's own Q8_K bytes: the scalar definition and every
// ISA level's vec-dot.
TEST_F(KquantGgml, VecDotMatchesGgml) {
    for (const auto& s : load_ggml_sets()) {
        const size_t rb = dtype_row_bytes(s.type, uint64_t(s.cols)), qrb = dtype_row_bytes(DType::Q8_K, uint64_t(s.cols));
        for (Isa isa : isa_levels()) {
            force_isa(isa);
            const VecDotFn dot = vec_dot_fn(s.type, false);
            for (int64_t t = 0; t < s.max_batch; ++t)
                for (int64_t r = 0; r < s.rows; ++r) {
                    const float want = s.yv[size_t(t * s.rows + r)];
                    const auto* xq = reinterpret_cast<const BlockQ8_K*>(s.xq.data() + size_t(t) * qrb);
                    ASSERT_EQ(bits(dot(s.cols, s.w.data() + size_t(r) * rb, xq)), bits(want))
                        << dtype_name(s.type) << " " << isa_name(isa) << " token " << t << " row " << r;
                    ASSERT_EQ(bits(kq_dot_scalar(s.type, KqForm::kVecDot, s.cols, s.w.data() + size_t(r) * rb, xq)),
                              bits(want));
                }
        }
    }
}

// ggml_mul_mat as llama.cpp runs it: every batch size, ISA level and thread count, the full
// row count and (where it keeps the form) a smaller odd one.
TEST_F(KquantGgml, MatmulMatchesGgmlMulMat) {
    ThreadPool pool1(1), pool2(2), pool3(3);
    for (const auto& s : load_ggml_sets()) {
        const size_t rb = dtype_row_bytes(s.type, uint64_t(s.cols));
        std::vector<int64_t> row_counts = {s.rows};
        if (!s.repack) row_counts.push_back(5);  // vec_dot/tiled values do not depend on the row count
        if (s.repack && s.rows > 8) row_counts.push_back(8);
        for (size_t bi = 0; bi < s.batches.size(); ++bi) {
            const int64_t b = s.batches[bi];
            for (int64_t rows : row_counts) {
                for (Isa isa : isa_levels()) {
                    force_isa(isa);
                    for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
                        std::vector<float> y(size_t(b * rows), -1.f);
                        Acts scratch;
                        matmul(s.type, s.w.data(), rb, rows, s.x.data(), b, s.cols, y.data(), rows, false, *pool, &scratch);
                        for (int64_t t = 0; t < b; ++t)
                            for (int64_t r = 0; r < rows; ++r)
                                ASSERT_EQ(bits(y[size_t(t * rows + r)]), bits(s.yg[bi][size_t(t * s.rows + r)]))
                                    << dtype_name(s.type) << " rows=" << rows << " batch=" << b << " " << isa_name(isa)
                                    << " threads=" << pool->n_threads() << " token " << t << " row " << r;
                    }
                }
            }
        }
    }
}

// ---- random rows: every SIMD kernel equals the scalar definition ------------------------

class KquantRandom : public ::testing::TestWithParam<DType> {
protected:
    void TearDown() override { force_isa(detected_isa()); }
};

TEST_P(KquantRandom, EveryIsaEqualsTheScalarDefinitionInEveryForm) {
    const DType t = GetParam();
    std::mt19937 rng(77);
    std::normal_distribution<float> nd(0, 1);
    const int64_t cols = 768, rows = 19, nb = cols / 256;
    const size_t rb = dtype_row_bytes(t, uint64_t(cols));
    std::vector<uint8_t> w;
    for (int64_t r = 0; r < rows; ++r) {
        auto row = test_util::random_row(t, cols, rng);
        w.insert(w.end(), row.begin(), row.end());
    }
    // Activations with outliers, one all-zero token and one saturating the int8 range.
    constexpr int64_t kTok = 11;  // 1-4 tokens: one pass; more: the row-group sweep
    std::vector<BlockQ8_K> xq(size_t(kTok * nb));
    for (int64_t k = 0; k < kTok; ++k) {
        std::vector<float> x(static_cast<size_t>(cols));
        for (auto& v : x) v = nd(rng) * (k == 3 ? 1e-3f : 1.f);
        x[size_t(k * 5)] = 40.f;
        if (k == 1) std::fill(x.begin(), x.end(), 0.f);
        quantize_row_q8_k_ref(x.data(), &xq[size_t(k * nb)], cols, k == 2);
    }
    for (KqForm f : {KqForm::kVecDot, KqForm::kTiled, KqForm::kGemv, KqForm::kGemm}) {
        if ((f == KqForm::kGemv || f == KqForm::kGemm) && t != DType::Q4_K) continue;
        for (int64_t n_tok = 1; n_tok <= kTok; ++n_tok) {
            for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, rows}, {3, 14}, {5, 6}}) {
                std::vector<float> want(size_t(n_tok * rows), 0.f);
                kq_rows_scalar(t, f, cols, w.data(), rb, xq.data(), n_tok, want.data(), rows, r0, r1);
                for (Isa isa : isa_levels()) {
                    force_isa(isa);
                    std::vector<float> got(want.size(), 0.f);
                    kq_rows_fn(t)(t, f, cols, w.data(), rb, xq.data(), n_tok, got.data(), rows, r0, r1);
                    for (size_t k = 0; k < got.size(); ++k)
                        ASSERT_EQ(bits(got[k]), bits(want[k])) << isa_name(isa) << " form " << int(f) << " tokens "
                                                               << n_tok << " rows " << r0 << ".." << r1 << " k=" << k;
                    if (f == KqForm::kVecDot) {
                        const VecDotFn dot = vec_dot_fn(t, false);
                        for (int64_t r = r0; r < r1; ++r)
                            for (int64_t k = 0; k < n_tok; ++k)
                                ASSERT_EQ(bits(dot(cols, w.data() + size_t(r) * rb, &xq[size_t(k * nb)])),
                                          bits(want[size_t(k * rows + r)])) << isa_name(isa);
                    }
                }
            }
        }
    }
}

// ---- real Gemma rows: dequantization as the gguf package computes it ---------------------

struct GemmaRows {
    std::string name;
    DType type;
    int64_t rows, cols;
    std::vector<uint8_t> raw;
    std::vector<float> want;  // gguf.quants.dequantize
};

std::vector<GemmaRows> load_gemma_rows() {
    static const std::vector<uint8_t> raw = read_testdata("gemma_rows.bin");
    std::vector<GemmaRows> out;
    if (raw.size() < 8 || std::memcmp(raw.data(), "SGR1", 4) != 0) {
        ADD_FAILURE() << "gemma_rows.bin: bad header";
        return out;
    }
    Reader r{raw, 4};
    const uint32_t n = r.u32();
    for (uint32_t i = 0; i < n; ++i) {
        GemmaRows g;
        const uint32_t len = r.u32();
        const uint8_t* p = r.take(len);
        g.name.assign(reinterpret_cast<const char*>(p), len);
        g.type = DType(r.u32());
        g.rows = r.u32(), g.cols = r.u32();
        g.raw = r.vec<uint8_t>(dtype_row_bytes(g.type, uint64_t(g.cols)) * size_t(g.rows));
        g.want = r.vec<float>(size_t(g.rows * g.cols));
        out.push_back(std::move(g));
    }
    EXPECT_EQ(r.at, raw.size());
    return out;
}

// Every quantized matmul type of the Gemma file (Q4_K, Q6_K, Q5_0, Q8_0) dequantizes to the
// gguf package's floats bit for bit, and the f32-mode matmul of those rows at every ISA level
// equals the 16-lane order applied to the package's floats (an F32 matrix holding them).
TEST_F(KquantGgml, GemmaRowsDequantizeAsGguf) {
    const auto sets = load_gemma_rows();
    ASSERT_EQ(sets.size(), 6u);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0, 1);
    ThreadPool pool(2);
    for (const auto& g : sets) {
        const size_t rb = dtype_row_bytes(g.type, uint64_t(g.cols));
        std::vector<float> got(size_t(g.cols));
        for (int64_t r = 0; r < g.rows; ++r) {
            ASSERT_TRUE(dequantize_row(g.type, g.raw.data() + size_t(r) * rb, got.data(), g.cols));
            for (int64_t k = 0; k < g.cols; ++k)
                ASSERT_EQ(bits(got[size_t(k)]), bits(g.want[size_t(r * g.cols + k)])) << g.name << " row " << r << " value " << k;
        }
        for (int64_t batch : {1, 3, 9}) {
            std::vector<float> x(size_t(batch * g.cols));
            for (auto& v : x) v = nd(rng);
            std::vector<float> want(size_t(batch * g.rows));
            for (int64_t t = 0; t < batch; ++t)
                for (int64_t r = 0; r < g.rows; ++r)
                    want[size_t(t * g.rows + r)] =
                        f32_lane_dot(DType::F32, reinterpret_cast<const uint8_t*>(g.want.data() + r * g.cols),
                                     x.data() + t * g.cols, g.cols);
            for (Isa isa : isa_levels()) {
                force_isa(isa);
                std::vector<float> y(want.size(), -1.f);
                Acts scratch;
                matmul(g.type, g.raw.data(), rb, g.rows, x.data(), batch, g.cols, y.data(), g.rows, true, pool, &scratch);
                for (size_t k = 0; k < y.size(); ++k)
                    ASSERT_EQ(bits(y[k]), bits(want[k])) << g.name << " " << isa_name(isa) << " batch " << batch << " k=" << k;
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(KTypes, KquantRandom, ::testing::Values(DType::Q4_K, DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace strata::cpu

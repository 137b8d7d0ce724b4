// Vec-dot tests: every vec-dot at every ISA level agrees with the f32 reference
// (dequantized weight · f32 activation) within the activation-quantization error, the
// SIMD levels agree with the scalar integer kernels to float-rounding precision, and
// every SIMD level equals the AVX2 kernel bit for bit. matmul_test.cpp covers the batched
// and multi-row paths.
#include "tensor/cpu/kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tensor/cpu/kernels_test_util.h"
#include "tensor/cpu/simd.h"

namespace strata::cpu {
namespace {

using test_util::random_row;

class VecDot : public ::testing::TestWithParam<DType> {};

TEST_P(VecDot, AllIsaLevelsMatchReference) {
    const DType t = GetParam();
    const int64_t n = 1536;  // multiple of 256 and of 32 (SmolLM2's ffn_down width)
    std::mt19937 rng(1234);
    std::normal_distribution<float> nd(0, 1);
    for (int rep = 0; rep < 20; ++rep) {
        auto w = random_row(t, n, rng);
        std::vector<float> x(static_cast<size_t>(n));
        for (auto& v : x) v = nd(rng);
        if (rep == 1) x[7] = 40.f;   // outlier
        if (rep == 2) std::fill(x.begin(), x.end(), 0.f);
        // Reference: dequantize, dot in double.
        std::vector<float> wf(static_cast<size_t>(n));
        ASSERT_TRUE(dequantize_row(t, w.data(), wf.data(), n));
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) ref += double(wf[size_t(i)]) * x[size_t(i)], mag += std::fabs(double(wf[size_t(i)]) * x[size_t(i)]);

        force_isa(Isa::kScalar);
        const float exact = vec_dot_fn(t, true)(n, w.data(), x.data());
        EXPECT_NEAR(exact, ref, 1e-5 * mag + 1e-6) << "exact path";

        std::vector<uint8_t> xq(dtype_row_bytes(act_type_for(t, false), uint64_t(n)));
        quantize_act_row(x.data(), act_type_for(t, false), xq.data(), n);
        const float scalar = vec_dot_fn(t, false)(n, w.data(), xq.data());
        // 8-bit activations: relative error per element <= 1/254 of the block max.
        EXPECT_NEAR(scalar, ref, 0.01 * mag + 1e-4) << "scalar quantized path";

        for (Isa isa : {Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
            if (int(isa) > int(detected_isa())) continue;
            force_isa(isa);
            std::vector<uint8_t> xq2(xq.size());
            quantize_act_row(x.data(), act_type_for(t, false), xq2.data(), n);
            EXPECT_EQ(xq, xq2) << "activation quantization differs at " << isa_name(isa);
            const float simd = vec_dot_fn(t, false)(n, w.data(), xq2.data());
            EXPECT_NEAR(simd, scalar, 2e-6 * mag + 1e-5) << isa_name(isa);
            // Every SIMD level reproduces the AVX2 kernel (= llama.cpp's) bit for bit.
            if (VecDotFn avx2 = avx2_vec_dot(t)) {
                EXPECT_EQ(simd, avx2(n, w.data(), xq2.data())) << isa_name(isa);
            }
            const float simd_exact = vec_dot_fn(t, true)(n, w.data(), x.data());
            EXPECT_NEAR(simd_exact, ref, 1e-5 * mag + 1e-6) << "exact path at " << isa_name(isa);
        }
        force_isa(detected_isa());
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, VecDot,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1,
                                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::IQ4_NL, DType::Q4_K,
                                           DType::Q5_K, DType::Q6_K),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace strata::cpu

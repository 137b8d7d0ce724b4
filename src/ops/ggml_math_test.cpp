// The portable and AVX-512 bodies of ggml_math.h agree bit for bit, and the ggml exp
// stays within its documented error (1.5 ulp + rounding) of libm's expf.
#include "ops/ggml_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "tensor/cpu/kernels.h"
#include "tensor/dtype.h"

namespace strata::ops {
namespace {

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

TEST(GgmlMath, ExpCloseToLibm) {
    for (float x = -87.f; x < 88.f; x += 0.0137f) {
        const float e = expf_ggml(x), r = std::exp(x);
        EXPECT_NEAR(e, r, 3e-7f * r) << x;
    }
    EXPECT_EQ(expf_ggml(-INFINITY), 0.f);
    EXPECT_EQ(expf_ggml(0.f), 1.f);
    EXPECT_EQ(expf_ggml(200.f), INFINITY);
}

TEST(GgmlMath, PortableMatchesAvx512) {
    if (cpu::detected_isa() < cpu::Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0, 4);
    for (int64_t n : {1, 15, 16, 33, 64, 100, 256, 1536}) {
        std::vector<float> x(static_cast<size_t>(n)), g(static_cast<size_t>(n)), u(static_cast<size_t>(n));
        std::vector<uint16_t> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            x[size_t(i)] = nd(rng);
            g[size_t(i)] = nd(rng);
            u[size_t(i)] = nd(rng);
            a[size_t(i)] = fp32_to_fp16(nd(rng));
            b[size_t(i)] = fp32_to_fp16(nd(rng));
        }
        if (n > 3) x[3] = -INFINITY;
        float mx = -INFINITY;
        for (float v : x) mx = std::max(mx, v);
        std::vector<float> y1(x.size()), y2(x.size()), e1(x.size()), e2(x.size());
        std::vector<float> g1 = g, g2 = g;
        cpu::force_isa(cpu::Isa::kAvx512);
        const double s1 = softmax_exp_ggml(x.data(), y1.data(), n, mx);
        vexp_ggml(x.data(), e1.data(), n);
        swiglu_ggml(g1.data(), u.data(), n);
        const float d1 = dot_f16_ggml(a.data(), b.data(), n);
        cpu::force_isa(cpu::Isa::kAvx2);
        const double s2 = softmax_exp_ggml(x.data(), y2.data(), n, mx);
        vexp_ggml(x.data(), e2.data(), n);
        swiglu_ggml(g2.data(), u.data(), n);
        const float d2 = dot_f16_ggml(a.data(), b.data(), n);
        cpu::force_isa(cpu::detected_isa());
        EXPECT_EQ(s1, s2) << n;
        EXPECT_TRUE(same_bits(d1, d2)) << n << ": " << d1 << " vs " << d2;
        for (size_t i = 0; i < x.size(); ++i) {
            EXPECT_TRUE(same_bits(y1[i], y2[i])) << n << " softmax " << i;
            EXPECT_TRUE(same_bits(e1[i], e2[i])) << n << " exp " << i;
            EXPECT_TRUE(same_bits(g1[i], g2[i])) << n << " swiglu " << i;
        }
    }
}

}  // namespace
}  // namespace strata::ops

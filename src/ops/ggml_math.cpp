// Portable bodies of ggml_math.h (same operation order as the AVX-512 ones) and the
// runtime switch between them.
#include "ops/ggml_math.h"

#include <cmath>
#include <cstring>

#include "tensor/cpu/kernels.h"
#include "tensor/dtype.h"

namespace strata::ops {

// AVX-512 bodies (ggml_math_avx512.cpp).
void vexp_ggml_avx512(const float* x, float* y, int64_t n);
void swiglu_ggml_avx512(float* g, const float* u, int64_t n);
double softmax_exp_ggml_avx512(const float* x, float* y, int64_t n, float max);
float dot_f16_ggml_avx512(const uint16_t* a, const uint16_t* b, int64_t n);

namespace {
bool use_avx512() { return cpu::active_isa() >= cpu::Isa::kAvx512; }

// Reduction order of GCC's _mm512_reduce_add_ps: halves 256+256, 128+128, then
// (v0+v2)+(v1+v3).
float reduce16(const float* v) {
    float t3[8], t6[4];
    for (int i = 0; i < 8; ++i) t3[i] = v[8 + i] + v[i];
    for (int i = 0; i < 4; ++i) t6[i] = t3[4 + i] + t3[i];
    return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}
}  // namespace

float expf_ggml(float x) {
    if (std::isnan(x)) return x;
    const float r = 0x1.8p23f;
    const float z = std::fma(x, 0x1.715476p+0f, r);
    const float n = z - r;
    if (!(std::fabs(n) <= 192.f)) return n > 0 ? INFINITY : 0.f;
    const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                      std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                             u, std::fma(0x1.ffffecp-1f, b, 1.0f));
    return std::ldexp(j, int(n));
}

void vexp_ggml(const float* x, float* y, int64_t n) {
    if (use_avx512()) return vexp_ggml_avx512(x, y, n);
    for (int64_t i = 0; i < n; ++i) y[i] = expf_ggml(x[i]);
}

void swiglu_ggml(float* g, const float* u, int64_t n) {
    if (use_avx512()) return swiglu_ggml_avx512(g, u, n);
    // ggml's 16-lane body; its scalar tail uses libm expf.
    int64_t i = 0;
    for (; i + 15 < n; i += 16)
        for (int64_t k = i; k < i + 16; ++k) g[k] = g[k] / (1.0f + expf_ggml(-g[k])) * u[k];
    for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

double softmax_exp_ggml(const float* x, float* y, int64_t n, float max) {
    if (use_avx512()) return softmax_exp_ggml_avx512(x, y, n, max);
    double sum = 0;
    int64_t i = 0;
    for (; i + 15 < n; i += 16) {
        for (int k = 0; k < 16; ++k) y[i + k] = expf_ggml(x[i + k] - max);
        sum += double(reduce16(y + i));
    }
    for (; i < n; ++i) {
        y[i] = std::exp(x[i] - max);
        sum += double(y[i]);
    }
    return sum;
}

float dot_f16_ggml(const uint16_t* a, const uint16_t* b, int64_t n) {
    if (use_avx512()) return dot_f16_ggml_avx512(a, b, n);
    const int64_t np = n & ~int64_t(63);
    float acc[4][16] = {};
    for (int64_t i = 0; i < np; i += 64)
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 16; ++l)
                acc[j][l] = std::fma(fp16_to_fp32(a[i + 16 * j + l]), fp16_to_fp32(b[i + 16 * j + l]), acc[j][l]);
    for (int l = 0; l < 16; ++l) {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
    }
    for (int l = 0; l < 16; ++l) acc[0][l] += acc[1][l];
    double sum = double(reduce16(acc[0]));
    for (int64_t i = np; i < n; ++i) sum += double(fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]));
    return float(sum);
}

}  // namespace strata::ops

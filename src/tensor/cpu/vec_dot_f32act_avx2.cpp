// AVX2 + FMA vec-dots for exact mode: f32 activations against quantized weights,
// dequantized on the fly (no activation quantization error). Compiled with -mavx2 -mfma
// -mf16c; reached only through dispatch. Results equal the scalar exact path up to f32
// summation order (checked in kernels_test.cpp).
#include <immintrin.h>

#include <cstring>

#include "tensor/cpu/simd.h"
#include "tensor/cpu/x86_common-inl.h"

namespace strata::cpu {

namespace {

using x86::h2f;
using x86::hsum8;
using x86::q5_high_bits;
using x86::unpack_nibbles;

// 32 unsigned/signed byte codes in element order -> sum_k code_k * x_k (8 lanes), and the
// 8-lane partial sum of x.
inline __m256 dot_codes_u8(__m256i q, const float* x, __m256* xsum) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
    const __m256 x2 = _mm256_loadu_ps(x + 16), x3 = _mm256_loadu_ps(x + 24);
    __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), x0);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), x1, s);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), x2, s);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), x3, s);
    if (xsum) *xsum = _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3));
    return s;
}

inline __m256 dot_codes_i8(__m256i q, const float* x) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), _mm256_loadu_ps(x + 16), s);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), _mm256_loadu_ps(x + 24), s);
    return s;
}

float f32act_q4_1(int64_t n, const void* w, const void* xv) {
    auto* a = static_cast<const BlockQ4_1*>(w);
    auto* x = static_cast<const float*>(xv);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        __m256 xs;
        const __m256 s = dot_codes_u8(unpack_nibbles(a[i].qs), x, &xs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d)), s, acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].m)), xs, accm);
    }
    return hsum8(_mm256_add_ps(acc, accm));
}

float f32act_q4_0(int64_t n, const void* w, const void* xv) {
    auto* a = static_cast<const BlockQ4_0*>(w);
    auto* x = static_cast<const float*>(xv);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        const __m256i q = _mm256_sub_epi8(unpack_nibbles(a[i].qs), _mm256_set1_epi8(8));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d)), dot_codes_i8(q, x), acc);
    }
    return hsum8(acc);
}

float f32act_q5_0(int64_t n, const void* w, const void* xv) {
    auto* a = static_cast<const BlockQ5_0*>(w);
    auto* x = static_cast<const float*>(xv);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        __m256i q = _mm256_or_si256(unpack_nibbles(a[i].qs), q5_high_bits(a[i].qh));
        q = _mm256_sub_epi8(q, _mm256_set1_epi8(16));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d)), dot_codes_i8(q, x), acc);
    }
    return hsum8(acc);
}

float f32act_q5_1(int64_t n, const void* w, const void* xv) {
    auto* a = static_cast<const BlockQ5_1*>(w);
    auto* x = static_cast<const float*>(xv);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        __m256 xs;
        const __m256i q = _mm256_or_si256(unpack_nibbles(a[i].qs), q5_high_bits(a[i].qh));
        const __m256 s = dot_codes_u8(q, x, &xs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d)), s, acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].m)), xs, accm);
    }
    return hsum8(_mm256_add_ps(acc, accm));
}

float f32act_q8_0(int64_t n, const void* w, const void* xv) {
    auto* a = static_cast<const BlockQ8_0*>(w);
    auto* x = static_cast<const float*>(xv);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(a[i].d)), dot_codes_i8(q, x), acc);
    }
    return hsum8(acc);
}

float f32act_f16(int64_t n, const void* w, const void* xv) {
    auto* a = static_cast<const uint16_t*>(w);
    auto* x = static_cast<const float*>(xv);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i))),
                              _mm256_loadu_ps(x + i), acc);
    float s = hsum8(acc);
    for (; i < n; ++i) s += h2f(a[i]) * x[i];
    return s;
}

}  // namespace

VecDotFn avx2_vec_dot_f32act(DType wt) {
    switch (wt) {
        case DType::Q4_0: return f32act_q4_0;
        case DType::Q4_1: return f32act_q4_1;
        case DType::Q5_0: return f32act_q5_0;
        case DType::Q5_1: return f32act_q5_1;
        case DType::Q8_0: return f32act_q8_0;
        case DType::F16: return f32act_f16;
        case DType::F32: return avx2_vec_dot(DType::F32);
        default: return nullptr;
    }
}

}  // namespace strata::cpu

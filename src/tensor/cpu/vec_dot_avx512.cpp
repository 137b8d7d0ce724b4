// Single-row vec-dots with AVX512-VNNI (256-bit vpdpbusd through AVX512VL): the AVX2
// kernels with maddubs+madd replaced by one instruction (Q4_0/Q5_0 gain 20-25%, Q5_1 and
// Q8_0 5-10% on Zen 5; Q4_1 gains nothing and stays on AVX2). vpdpbusd sums the same four
// byte products per int32 lane, so the integers, and with them the float results, equal
// the AVX2 kernels' exactly. Without VNNI, AVX-512 brings nothing to a one-row, one-block
// loop, and the table returns nullptr (dispatch uses AVX2). Decode runs through the
// multi-row matvec (matvec_avx512.cpp); these serve vec_dot_fn() callers.
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() and trip
// -W(maybe-)uninitialized inside immintrin.h; the pragmas must precede the include.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "tensor/cpu/simd.h"
#include "tensor/cpu/x86_common-inl.h"

namespace strata::cpu {

namespace {

using x86::h2f;
using x86::hsum8;
using x86::unpack_nibbles;

inline __m256i add_high(__m256i v, const uint8_t* qh) {  // bit j of qh -> +0x10 in byte j
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return _mm256_mask_add_epi8(v, __mmask32(h), v, _mm256_set1_epi8(0x10));
}

inline __m256i dot_u8i8(__m256i a, __m256i b) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b); }

// (code - off)·x as code·x - off·sum(x): exact integers, one vpdpbusd each.
inline __m256i dot_offset(__m256i code, __m256i x, int off) {
    return _mm256_sub_epi32(dot_u8i8(code, x), dot_u8i8(_mm256_set1_epi8(char(off)), x));
}

float dot_q4_0(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ4_0*>(w);
    auto* b = static_cast<const BlockQ8_0*>(x);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i) {
        const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_offset(unpack_nibbles(a[i].qs), qb, 8)), acc);
    }
    return hsum8(acc);
}

float dot_q5_0(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ5_0*>(w);
    auto* b = static_cast<const BlockQ8_0*>(x);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i) {
        const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
        const __m256i qa = add_high(unpack_nibbles(a[i].qs), a[i].qh);
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_offset(qa, qb, 16)), acc);
    }
    return hsum8(acc);
}

float dot_q5_1(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ5_1*>(w);
    auto* b = static_cast<const BlockQ8_1*>(x);
    __m256 acc = _mm256_setzero_ps();
    __m128 summs = _mm_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i) {
        summs = _mm_fmadd_ss(_mm_set_ss(h2f(a[i].m)), _mm_set_ss(h2f(b[i].s)), summs);
        const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
        const __m256i qa = add_high(unpack_nibbles(a[i].qs), a[i].qh);
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8i8(qa, qb)), acc);
    }
    return hsum8(acc) + _mm_cvtss_f32(summs);
}

float dot_q8_0(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ8_0*>(w);
    auto* b = static_cast<const BlockQ8_0*>(x);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i) {
        const __m256 d = _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d));
        const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[i].qs));
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qs));
        const __m256i ip = dot_u8i8(_mm256_sign_epi8(qa, qa), _mm256_sign_epi8(qb, qa));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(ip), acc);
    }
    return hsum8(acc);
}

}  // namespace

VecDotFn avx512_vec_dot(DType wt, bool vnni) {
    if (!vnni) return nullptr;
    switch (wt) {
        case DType::Q4_0: return dot_q4_0;
        case DType::Q4_1: return nullptr;  // measured no faster than AVX2 (bench/kernels vecdot/*)
        case DType::Q5_0: return dot_q5_0;
        case DType::Q5_1: return dot_q5_1;
        case DType::Q8_0: return dot_q8_0;
        default: return nullptr;
    }
}

}  // namespace strata::cpu

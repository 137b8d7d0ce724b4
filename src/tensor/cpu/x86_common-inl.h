// Small AVX2/F16C helpers shared by the per-ISA kernel files (vec_dot_*, matvec_*, gemm_*).
// Include only from files compiled with at least -mavx2 -mfma -mf16c. Everything is
// static inline (internal linkage): each ISA's translation unit keeps its own copy, so no
// function compiled with wider instructions can be picked by the linker for baseline code.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace strata::cpu::x86 {

// Horizontal sum in ggml's hsum_float_8 order (upper + lower half, then pairs): the
// order matters for matching llama.cpp's results bit for bit.
static inline float hsum8(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// 16 bytes of packed nibbles -> 32 bytes in [0, 15], low nibbles first (ggml element order).
static inline __m256i unpack_nibbles(const uint8_t* qs) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

// The 32 high bits of a Q5 block as 0x10 in every byte whose bit is set.
static inline __m256i q5_high_bits(const uint8_t* qh) {
    const uint32_t h = load_u32(qh);
    const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                                            0x0303030303030303);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int(h)), shuf);
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
    bytes = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
    return _mm256_and_si256(bytes, _mm256_set1_epi8(0x10));
}

}  // namespace strata::cpu::x86

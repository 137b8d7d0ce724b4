// f32-activation mode (kernels.h) at the AVX2 level, every batch size: a tile of
// kGemmRows weight rows is dequantized to f32 once, then swept against the tokens one at a
// time. The 16-lane order takes two 8-lane registers per (row, token): lanes 0-7 and 8-15.
#include <immintrin.h>

#include <cstring>

#include "tensor/cpu/simd.h"
#include "tensor/cpu/x86_common-inl.h"

namespace strata::cpu {

namespace {

using x86::h2f;
using x86::hsum8;

// 32 byte codes -> 4x8 floats: d·code + m (m = 0 for symmetric formats).
inline void store_block(__m256i q, bool is_signed, float d, float m, float* out) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    for (int k = 0; k < 4; ++k) {
        const __m256i v = is_signed ? _mm256_cvtepi8_epi32(parts[k]) : _mm256_cvtepu8_epi32(parts[k]);
        _mm256_storeu_ps(out + 8 * k, _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), vd, vm));
    }
}

inline __m256i nibbles(const uint8_t* qs) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

inline __m256i high_bits(const uint8_t* qh) {  // bit j of qh -> 0x10 in byte j
    uint32_t h;
    std::memcpy(&h, qh, 4);
    const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                                            0x0303030303030303);
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32(int(h)), shuf);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit), _mm256_set1_epi8(0x10));
}

// K-quant super-blocks: each 32-value group's codes built as bytes, widened 8 at a time.
// Values equal dequantize_row's: d·sc and dmin·m are exact f32 products, code·(d·sc) is
// exact, so fma(code, d·sc, -dmin·m) rounds once as the reference's d1·code - m1 does;
// Q6_K's (code - 32)·(d·sc) is exact.
void dequant_kq(DType wt, const uint8_t* b, float* out) {
    float d1[16], m1[16] = {};  // per 16 values
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    if (wt == DType::Q6_K) {
        const float d = h2f(uint16_t(b[208] | b[209] << 8));
        for (int s = 0; s < 16; ++s) d1[s] = d * float(int8_t(b[192 + s]));
    } else {
        uint32_t u[4];  // ggml's 12-byte scale unpacking: bytes 0-7 scales, 8-15 minimums
        std::memcpy(u, b + 4, 12);
        u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
        const uint32_t aux = u[1] & 0x3f3f3f3f;
        u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
        u[2] = aux;
        u[0] &= 0x3f3f3f3f;
        uint8_t sm[16];
        std::memcpy(sm, u, 16);
        const float d = h2f(uint16_t(b[0] | b[1] << 8)), dmin = h2f(uint16_t(b[2] | b[3] << 8));
        for (int s = 0; s < 16; ++s) d1[s] = d * float(sm[s / 2]), m1[s] = dmin * float(sm[8 + s / 2]);
    }
    alignas(32) uint8_t codes[32];
    for (int g = 0; g < 8; ++g, out += 32) {
        __m256i c;
        if (wt == DType::Q6_K) {
            const int h = g / 4, k = g % 4;
            const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h + 32 * (k & 1)));
            const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h));
            const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (k >> 1))), m4);
            const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k)), _mm256_set1_epi8(3));
            c = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
        } else {
            const size_t qs = wt == DType::Q4_K ? 16 : 48;
            const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + qs + 32 * (g / 2)));
            c = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(4 * (g % 2))), m4);
            if (wt == DType::Q5_K) {
                const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
                const __m256i hb = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(g)), _mm256_set1_epi8(1));
                c = _mm256_or_si256(c, _mm256_slli_epi16(hb, 4));
            }
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(codes), c);
        for (int k = 0; k < 4; ++k) {
            const int s = 2 * g + k / 2;
            const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8 * k))));
            const __m256 r = wt == DType::Q6_K
                                 ? _mm256_mul_ps(_mm256_sub_ps(v, _mm256_set1_ps(32.f)), _mm256_set1_ps(d1[s]))
                                 : _mm256_fmadd_ps(v, _mm256_set1_ps(d1[s]), _mm256_set1_ps(-m1[s]));
            _mm256_storeu_ps(out + 8 * k, r);
        }
    }
}

// Dequantizes one row (the reference dequantize_row for formats without a fast path).
// Values equal the reference's exactly: code·d is exact in f32, so fma(code, d, m) and
// the reference's code·d + m both round once.
void dequant_row(DType wt, const uint8_t* w, float* out, int64_t n) {
    const int64_t nb = n / 32;
    switch (wt) {
        case DType::Q4_0:
            for (int64_t i = 0; i < nb; ++i) {
                auto* b = reinterpret_cast<const BlockQ4_0*>(w) + i;
                const float d = h2f(b->d);
                store_block(nibbles(b->qs), false, d, -8 * d, out + 32 * i);
            }
            return;
        case DType::Q4_1:
            for (int64_t i = 0; i < nb; ++i) {
                auto* b = reinterpret_cast<const BlockQ4_1*>(w) + i;
                store_block(nibbles(b->qs), false, h2f(b->d), h2f(b->m), out + 32 * i);
            }
            return;
        case DType::Q5_0:
            for (int64_t i = 0; i < nb; ++i) {
                auto* b = reinterpret_cast<const BlockQ5_0*>(w) + i;
                const float d = h2f(b->d);
                store_block(_mm256_or_si256(nibbles(b->qs), high_bits(b->qh)), false, d, -16 * d, out + 32 * i);
            }
            return;
        case DType::Q5_1:
            for (int64_t i = 0; i < nb; ++i) {
                auto* b = reinterpret_cast<const BlockQ5_1*>(w) + i;
                store_block(_mm256_or_si256(nibbles(b->qs), high_bits(b->qh)), false, h2f(b->d), h2f(b->m), out + 32 * i);
            }
            return;
        case DType::Q8_0:
            for (int64_t i = 0; i < nb; ++i) {
                auto* b = reinterpret_cast<const BlockQ8_0*>(w) + i;
                store_block(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs)), true, h2f(b->d), 0.f, out + 32 * i);
            }
            return;
        case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: {
            const size_t bb = wt == DType::Q4_K ? 144 : wt == DType::Q5_K ? 176 : 210;
            for (int64_t i = 0; i < n / 256; ++i) dequant_kq(wt, w + size_t(i) * bb, out + 256 * i);
            return;
        }
        default: dequantize_row(wt, w, out, n); return;
    }
}

// Lanes i and i+8 added, then ggml's hsum_float_8 order (F32Lanes::sum).
inline float reduce16(__m256 lo, __m256 hi) { return hsum8(_mm256_add_ps(lo, hi)); }

inline __m256i tail_mask8(int64_t left) {  // first min(left, 8) lanes set
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(left < 8 ? left : 8)), idx);
}

// Rows [0, rows) of the tile times token t: 4 rows x 2 registers of accumulators.
void pass(const float* wf, int64_t cols, const float* xt, float* yt, int64_t row0, int rows) {
    constexpr int R = kGemmRows;
    __m256 lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= cols; k += 16) {
        const __m256 x0 = _mm256_loadu_ps(xt + k), x1 = _mm256_loadu_ps(xt + k + 8);
        for (int r = 0; r < R; ++r) {
            lo[r] = _mm256_fmadd_ps(_mm256_loadu_ps(wf + r * cols + k), x0, lo[r]);
            hi[r] = _mm256_fmadd_ps(_mm256_loadu_ps(wf + r * cols + k + 8), x1, hi[r]);
        }
    }
    if (k < cols) {  // zero-padded tail, as the 16-lane order defines it
        const __m256i m0 = tail_mask8(cols - k), m1 = tail_mask8(cols - k - 8);
        const __m256 x0 = _mm256_maskload_ps(xt + k, m0), x1 = _mm256_maskload_ps(xt + k + 8, m1);
        for (int r = 0; r < R; ++r) {
            lo[r] = _mm256_fmadd_ps(_mm256_maskload_ps(wf + r * cols + k, m0), x0, lo[r]);
            hi[r] = _mm256_fmadd_ps(_mm256_maskload_ps(wf + r * cols + k + 8, m1), x1, hi[r]);
        }
    }
    for (int r = 0; r < rows; ++r) yt[row0 + r] = reduce16(lo[r], hi[r]);
}

}  // namespace

void avx2_gemm_f32_tile(DType wt, const uint8_t* w, size_t rb, int rows, int64_t cols, float* wf, const float* x,
                        int64_t t0, int64_t t1, float* y, int64_t ldy, int64_t row0) {
    for (int r = 0; r < kGemmRows; ++r) {
        if (r < rows) dequant_row(wt, w + size_t(r) * rb, wf + r * cols, cols);
        else std::memset(wf + r * cols, 0, size_t(cols) * sizeof(float));
    }
    for (int64_t t = t0; t < t1; ++t) pass(wf, cols, x + t * cols, y + t * ldy, row0, rows);
}

}  // namespace strata::cpu

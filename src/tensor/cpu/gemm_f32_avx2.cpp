// Exact-mode (f32 activation) batched kernels, AVX2 + FMA, used at every level from AVX2
// up: a tile of kGemmRows weight rows is dequantized to f32 once, then swept against all
// tokens with a 4-row x 3-token register tile. Exact mode is the reference, not a
// llama.cpp match, so the accumulation order here (8 partial sums per (row, token), then
// a horizontal sum) may differ from the one-row f32act vec-dots by float rounding only;
// kernels_test/matmul_test bound it against a double-precision reference.
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

// Dequantizes one row (the reference dequantize_row for formats without a fast path).
// Values equal the reference's except Q4_1/Q5_1, where fma(q, d, m) rounds once and the
// reference's q·d + m twice: a 1-ulp difference, within exact mode's bounds.
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
        default: dequantize_row(wt, w, out, n); return;
    }
}

template <int T>
void pass(const float* wf, int64_t cols, const float* x, int64_t t0, float* y, int64_t ldy, int64_t row0, int rows) {
    constexpr int R = kGemmRows;
    __m256 acc[R][T];
    for (auto& a : acc)
        for (auto& v : a) v = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= cols; k += 8) {
        __m256 xv[T];
        for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x + (t0 + t) * cols + k);
        for (int r = 0; r < R; ++r) {
            const __m256 wv = _mm256_loadu_ps(wf + r * cols + k);
            for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < rows; ++r)
        for (int t = 0; t < T; ++t) {
            float s = hsum8(acc[r][t]);
            for (int64_t j = k; j < cols; ++j) s += wf[r * cols + j] * x[(t0 + t) * cols + j];
            y[(t0 + t) * ldy + row0 + r] = s;
        }
}

}  // namespace

void avx2_gemm_f32_tile(DType wt, const uint8_t* w, size_t rb, int rows, int64_t cols, float* wf, const float* x,
                        int64_t t0, int64_t t1, float* y, int64_t ldy, int64_t row0) {
    for (int r = 0; r < kGemmRows; ++r) {
        if (r < rows) dequant_row(wt, w + size_t(r) * rb, wf + r * cols, cols);
        else std::memset(wf + r * cols, 0, size_t(cols) * sizeof(float));
    }
    int64_t t = t0;
    for (; t + 3 <= t1; t += 3) pass<3>(wf, cols, x, t, y, ldy, row0, rows);
    if (t1 - t == 2) pass<2>(wf, cols, x, t, y, ldy, row0, rows);
    if (t1 - t == 1) pass<1>(wf, cols, x, t, y, ldy, row0, rows);
}

}  // namespace strata::cpu

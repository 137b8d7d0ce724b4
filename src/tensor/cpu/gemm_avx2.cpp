// AVX2 micro-kernels for the batched (prefill) product of a packed weight tile with packed
// Q8 activations; the fallback for CPUs without AVX-512 (gemm_avx512.cpp has the layout
// and numerics notes). Each (row, token) pair owns one 8-lane accumulator and sees the
// AVX2 vec-dot's exact arithmetic, so results match decode bit for bit. With 16 vector
// registers the tile is kGemmRows rows x 2 tokens; wider tiles spill (bench/kernels).
#include <immintrin.h>

#include "tensor/cpu/simd.h"

namespace strata::cpu {

namespace {

inline float hsum8(__m256 v) {  // ggml's hsum_float_8 order
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

inline __m256i dot_u8i8(__m256i a, __m256i b) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

template <bool kSigned, bool kOffset, bool kMin, int TP>
void tile_pass(const PackedTile& t, const PackedActs& x, int64_t p0, float* y, int64_t ldy, int64_t row0,
               int n_rows) {
    constexpr int R = kGemmRows, T = 2 * TP;
    constexpr int NS = TP;  // summs registers, lane r*T + t
    const int64_t nb = t.nb;
    __m256 acc[R][T];
    __m256 sm[NS];
    for (auto& a : acc)
        for (auto& v : a) v = _mm256_setzero_ps();
    for (auto& v : sm) v = _mm256_setzero_ps();
    const int8_t* xq = x.qs() + p0 * nb * 64;
    for (int64_t i = 0; i < nb; ++i) {
        __m256i xv[T], corr[T];
        __m256 dx[T];
        const float* dxp = x.d.data() + i * x.ld + 2 * p0;
        for (int k = 0; k < T; ++k) {
            xv[k] = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq + ((k / 2) * nb + i) * 64 + (k % 2) * 32));
            dx[k] = _mm256_broadcast_ss(dxp + k);
            if constexpr (kOffset) corr[k] = dot_u8i8(_mm256_set1_epi8(char(t.offset)), xv[k]);
        }
        const uint8_t* wc = t.codes + i * R * 32;
        for (int r = 0; r < R; ++r) {
            const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(wc + r * 32));
            const __m256 dw = _mm256_broadcast_ss(t.d + i * R + r);
            [[maybe_unused]] __m256i aw;
            if constexpr (kSigned) aw = _mm256_sign_epi8(wv, wv);
            for (int k = 0; k < T; ++k) {
                __m256i ip;
                if constexpr (kSigned) ip = dot_u8i8(aw, _mm256_sign_epi8(xv[k], wv));
                else ip = dot_u8i8(wv, xv[k]);
                if constexpr (kOffset) ip = _mm256_sub_epi32(ip, corr[k]);
                acc[r][k] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx[k]), _mm256_cvtepi32_ps(ip), acc[r][k]);
            }
        }
        if constexpr (kMin) {
            const float* sx = x.s.data() + i * x.ld + 2 * p0;
            const __m256 m4 = _mm256_castps128_ps256(_mm_loadu_ps(t.m + i * R));
            if constexpr (TP == 1) {
                const __m256 s2 = _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(sx)));
                const __m256i idx = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
                sm[0] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(m4, idx), s2, sm[0]);
            } else {
                static_assert(TP == 2, "summs lanes laid out for up to 4 tokens");
                const __m256 s4 = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(sx));
                sm[0] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(m4, _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1)), s4, sm[0]);
                sm[1] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(m4, _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3)), s4, sm[1]);
            }
        }
    }
    alignas(32) float sms[8 * NS];
    for (int k = 0; k < NS; ++k) _mm256_store_ps(sms + 8 * k, sm[k]);
    for (int r = 0; r < n_rows; ++r) {
        for (int k = 0; k < T; ++k) {
            const int64_t tok = 2 * p0 + k;
            if (tok >= x.n_tok) break;
            float v = hsum8(acc[r][k]);
            if constexpr (kMin) v += sms[r * T + k];
            y[tok * ldy + row0 + r] = v;
        }
    }
}

template <bool kSigned, bool kOffset, bool kMin, int TPMax>
void tile_all(const PackedTile& t, const PackedActs& x, int64_t p0, int64_t p1, float* y, int64_t ldy,
              int64_t row0, int n_rows) {
    int64_t p = p0;
    for (; p + TPMax <= p1; p += TPMax) tile_pass<kSigned, kOffset, kMin, TPMax>(t, x, p, y, ldy, row0, n_rows);
    if constexpr (TPMax > 1)
        if (p < p1) tile_pass<kSigned, kOffset, kMin, 1>(t, x, p, y, ldy, row0, n_rows);
}

template <int TPMax>
GemmTileFn pick(DType wt) {
    switch (wt) {
        case DType::Q4_1: case DType::Q5_1: return tile_all<false, false, true, TPMax>;
        case DType::Q4_0: case DType::Q5_0: return tile_all<false, true, false, TPMax>;
        case DType::Q8_0: return tile_all<true, false, false, TPMax>;
        default: return nullptr;
    }
}

}  // namespace

GemmTileFn avx2_gemm_tile(DType wt, int tp) { return tp == 2 ? pick<2>(wt) : pick<1>(wt); }

}  // namespace strata::cpu

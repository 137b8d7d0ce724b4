// AVX-512 micro-kernels for the batched (prefill) product of a packed weight tile
// (kGemmRows rows, simd.h) with packed Q8 activations (token pairs, kernels.h).
//
// A 512-bit accumulator holds two (row, token) dot products, tokens 2p and 2p+1 of one
// row, as two 8-lane halves. Each half sees exactly the AVX2 vec-dot's arithmetic for its
// pair: per block an 8-lane int32 dot (4 bytes per lane, same grouping as maddubs+madd or
// vpdpbusd), converted and fused-multiply-added with the scale d_w·d_x, then ggml's
// horizontal sum and the m·s sum. So prefill logits equal decode's bit for bit, and the
// float accumulation order llama.cpp uses is kept even though nothing forces it here.
// With VNNI the int dot is one vpdpbusd (unsigned codes; signed formats carry an offset
// that is subtracted as offset·sum(x), exactly); without it, vpmaddubsw + vpmaddwd.
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() and trip
// -W(maybe-)uninitialized inside immintrin.h; the pragmas must precede the include.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "tensor/cpu/simd.h"
#include "tensor/cpu/x86_common-inl.h"

namespace strata::cpu {

namespace {

using x86::hsum8;

inline __m256 half(__m512 v, int h) {
    return h ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)) : _mm512_castps512_ps256(v);
}

// Sum over each 4-byte group of unsigned(a) * signed(b): 16 int32 lanes.
template <bool kVnni>
inline __m512i dot_u8i8(__m512i a, __m512i b) {
    if constexpr (kVnni) return _mm512_dpbusd_epi32(_mm512_setzero_si512(), a, b);
    else return _mm512_madd_epi16(_mm512_maddubs_epi16(a, b), _mm512_set1_epi16(1));
}

// kSigned: codes are int8 (Q8_0 without VNNI): |w|·(±x). kOffset: codes are value+offset.
// kMin: Q4_1/Q5_1 minimum term. TP: token pairs per pass (accumulators = kGemmRows·TP).
template <bool kVnni, bool kSigned, bool kOffset, bool kMin, int TP>
void tile_pass(const PackedTile& t, const PackedActs& x, int64_t p0, float* y, int64_t ldy, int64_t row0,
               int n_rows) {
    constexpr int R = kGemmRows;
    constexpr int NS = TP <= 2 ? 1 : 2;  // summs registers: lane r*4+t (T<=4) or (r%2)*8+t
    const int64_t nb = t.nb;
    const __m512i pair_idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512 acc[R][TP];
    __m512 sm[NS];
    for (auto& a : acc)
        for (auto& v : a) v = _mm512_setzero_ps();
    for (auto& v : sm) v = _mm512_setzero_ps();
    const int8_t* xq = x.qs() + p0 * nb * 64;
    for (int64_t i = 0; i < nb; ++i) {
        __m512i xv[TP], corr[TP];
        __m512 dx[TP];
        const float* dxp = x.d.data() + i * x.ld + 2 * p0;
        for (int p = 0; p < TP; ++p) {
            xv[p] = _mm512_load_si512(xq + (p * nb + i) * 64);
            const __m128 d2 = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(dxp + 2 * p)));
            dx[p] = _mm512_permutexvar_ps(pair_idx, _mm512_castps128_ps512(d2));
            if constexpr (kOffset) {
                corr[p] = dot_u8i8<kVnni>(_mm512_set1_epi8(char(t.offset)), xv[p]);
                if constexpr (kVnni) corr[p] = _mm512_sub_epi32(_mm512_setzero_si512(), corr[p]);
            }
        }
        const uint8_t* wc = t.codes + i * R * 32;
        for (int r = 0; r < R; ++r) {
            const __m512i wv = _mm512_broadcast_i64x4(_mm256_load_si256(reinterpret_cast<const __m256i*>(wc + r * 32)));
            const __m512 dw = _mm512_set1_ps(t.d[i * R + r]);
            [[maybe_unused]] __m512i aw;
            [[maybe_unused]] __mmask64 neg;
            if constexpr (kSigned) aw = _mm512_abs_epi8(wv), neg = _mm512_movepi8_mask(wv);
            for (int p = 0; p < TP; ++p) {
                __m512i ip;
                if constexpr (kSigned) {
                    ip = dot_u8i8<kVnni>(aw, _mm512_mask_sub_epi8(xv[p], neg, _mm512_setzero_si512(), xv[p]));
                } else if constexpr (kOffset && kVnni) {
                    ip = _mm512_dpbusd_epi32(corr[p], wv, xv[p]);  // starts from -offset·sum(x)
                } else {
                    ip = dot_u8i8<kVnni>(wv, xv[p]);
                    if constexpr (kOffset) ip = _mm512_sub_epi32(ip, corr[p]);
                }
                acc[r][p] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx[p]), _mm512_cvtepi32_ps(ip), acc[r][p]);
            }
        }
        if constexpr (kMin) {
            const float* sx = x.s.data() + i * x.ld + 2 * p0;
            const __m512 m4 = _mm512_broadcast_f32x4(_mm_loadu_ps(t.m + i * R));
            if constexpr (NS == 1) {
                const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
                const __m512 s4 = _mm512_broadcast_f32x4(_mm_loadu_ps(sx));
                sm[0] = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx, m4), s4, sm[0]);
            } else {
                const __m512 s8 = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(sx))));
                const __m512i idx0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
                const __m512i idx1 = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
                sm[0] = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx0, m4), s8, sm[0]);
                sm[1] = _mm512_fmadd_ps(_mm512_permutexvar_ps(idx1, m4), s8, sm[1]);
            }
        }
    }
    alignas(64) float sms[16 * NS];
    for (int k = 0; k < NS; ++k) _mm512_store_ps(sms + 16 * k, sm[k]);
    for (int r = 0; r < n_rows; ++r) {
        for (int p = 0; p < TP; ++p) {
            for (int h = 0; h < 2; ++h) {
                const int64_t tok = 2 * (p0 + p) + h;
                if (tok >= x.n_tok) break;
                float v = hsum8(half(acc[r][p], h));
                if constexpr (kMin) {
                    const int tt = 2 * p + h;
                    v += NS == 1 ? sms[r * 4 + tt] : sms[(r / 2) * 16 + (r % 2) * 8 + tt];
                }
                y[tok * ldy + row0 + r] = v;
            }
        }
    }
}

template <bool kVnni, bool kSigned, bool kOffset, bool kMin, int TPMax>
void tile_all(const PackedTile& t, const PackedActs& x, int64_t p0, int64_t p1, float* y, int64_t ldy,
              int64_t row0, int n_rows) {
    int64_t p = p0;
    for (; p + TPMax <= p1; p += TPMax) tile_pass<kVnni, kSigned, kOffset, kMin, TPMax>(t, x, p, y, ldy, row0, n_rows);
    switch (p1 - p) {  // remainder, largest pass first
        case 3: if constexpr (TPMax > 3) tile_pass<kVnni, kSigned, kOffset, kMin, 3>(t, x, p, y, ldy, row0, n_rows); break;
        case 2: if constexpr (TPMax > 2) tile_pass<kVnni, kSigned, kOffset, kMin, 2>(t, x, p, y, ldy, row0, n_rows); break;
        case 1: if constexpr (TPMax > 1) tile_pass<kVnni, kSigned, kOffset, kMin, 1>(t, x, p, y, ldy, row0, n_rows); break;
        default: break;
    }
}

template <bool kVnni, int TPMax>
GemmTileFn pick(DType wt) {
    switch (wt) {
        case DType::Q4_1: case DType::Q5_1: return tile_all<kVnni, false, false, true, TPMax>;
        case DType::Q4_0: case DType::Q5_0: return tile_all<kVnni, false, true, false, TPMax>;
        case DType::Q8_0:  // VNNI: q+128 codes with offset; else signed codes
            if constexpr (kVnni) return tile_all<kVnni, false, true, false, TPMax>;
            else return tile_all<kVnni, true, false, false, TPMax>;
        default: return nullptr;
    }
}

}  // namespace

// tp: token pairs per pass. The default, 4 (16 accumulators), measured best on Zen 5 for
// every format, a few percent ahead of 2 and 3 (bench/kernels, tile/*).
GemmTileFn avx512_gemm_tile(DType wt, bool vnni, int tp) {
    switch (tp == 0 ? 4 : tp) {
        case 1: return vnni ? pick<true, 1>(wt) : pick<false, 1>(wt);
        case 2: return vnni ? pick<true, 2>(wt) : pick<false, 2>(wt);
        case 3: return vnni ? pick<true, 3>(wt) : pick<false, 3>(wt);
        default: return vnni ? pick<true, 4>(wt) : pick<false, 4>(wt);
    }
}

}  // namespace strata::cpu

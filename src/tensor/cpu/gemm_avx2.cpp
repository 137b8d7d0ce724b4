// AVX2 micro-kernels for the batched (prefill) product of a packed weight tile with packed
// Q8 activations; the fallback for CPUs without AVX-512 (gemm_avx512.cpp has the layout
// and numerics notes). Each (row, token) pair owns one 8-lane accumulator and sees the
// AVX2 vec-dot's exact arithmetic, so results match decode bit for bit. With 16 vector
// registers the tile is kGemmRows rows x 2 tokens; wider tiles spill (bench/kernels).
// Also the AVX2 weight-tile packer every SIMD level uses (gemm_pack.cpp has the layout).
#include <immintrin.h>

#include <cstring>

#include "tensor/cpu/simd.h"
#include "tensor/cpu/x86_common-inl.h"

namespace strata::cpu {

namespace {

using x86::hsum8;

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

// 32 codes of one block in value order, as gemm_pack.cpp lays them out.
template <DType W>
inline void pack_block(const uint8_t* b, bool offset_q8, uint8_t* c, float* d, float* m) {
    if constexpr (W == DType::Q8_0) {
        __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2));
        if (offset_q8) q = _mm256_xor_si256(q, _mm256_set1_epi8(char(0x80)));
        _mm256_store_si256(reinterpret_cast<__m256i*>(c), q);
        *d = _cvtsh_ss(uint16_t(b[0] | b[1] << 8)), *m = 0;
    } else {
        constexpr bool kMin = W == DType::Q4_1 || W == DType::Q5_1, kHigh = W == DType::Q5_0 || W == DType::Q5_1;
        constexpr int kQs = (kMin ? 4 : 2) + (kHigh ? 4 : 0);
        const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kQs));
        __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
        if constexpr (kHigh) {  // bit j of qh -> 0x10 in byte j
            uint32_t h;
            std::memcpy(&h, b + (kMin ? 4 : 2), 4);
            const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202,
                                                    0x0303030303030303);
            const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
            const __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32(int(h)), shuf);
            v = _mm256_or_si256(v, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit),
                                                    _mm256_set1_epi8(0x10)));
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(c), v);
        *d = _cvtsh_ss(uint16_t(b[0] | b[1] << 8));
        *m = kMin ? _cvtsh_ss(uint16_t(b[2] | b[3] << 8)) : 0.f;
    }
}

template <DType W>
void pack_rows(const uint8_t* w, size_t rb, int64_t n_rows, bool offset_q8, PackedTile* t) {
    constexpr size_t bytes = W == DType::Q4_0 ? sizeof(BlockQ4_0) : W == DType::Q4_1 ? sizeof(BlockQ4_1)
                           : W == DType::Q5_0 ? sizeof(BlockQ5_0) : W == DType::Q5_1 ? sizeof(BlockQ5_1)
                           : sizeof(BlockQ8_0);
    for (int r = 0; r < kGemmRows; ++r) {
        for (int64_t i = 0; i < t->nb; ++i) {
            uint8_t* c = t->codes + (size_t(i) * kGemmRows + size_t(r)) * 32;
            float* d = t->d + i * kGemmRows + r;
            float* m = t->m + i * kGemmRows + r;
            if (r < n_rows) {
                pack_block<W>(w + size_t(r) * rb + size_t(i) * bytes, offset_q8, c, d, m);
            } else {
                _mm256_store_si256(reinterpret_cast<__m256i*>(c), _mm256_setzero_si256());
                *d = 0, *m = 0;
            }
        }
    }
}

}  // namespace

void avx2_pack_weight_tile(DType wt, bool offset_q8, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
                           int64_t nb, PackedTile* t) {
    set_tile_format(wt, offset_q8, nb, t);
    switch (wt) {
        case DType::Q4_0: return pack_rows<DType::Q4_0>(w, w_row_bytes, n_rows, offset_q8, t);
        case DType::Q4_1: return pack_rows<DType::Q4_1>(w, w_row_bytes, n_rows, offset_q8, t);
        case DType::Q5_0: return pack_rows<DType::Q5_0>(w, w_row_bytes, n_rows, offset_q8, t);
        case DType::Q5_1: return pack_rows<DType::Q5_1>(w, w_row_bytes, n_rows, offset_q8, t);
        case DType::Q8_0: return pack_rows<DType::Q8_0>(w, w_row_bytes, n_rows, offset_q8, t);
        default: return;
    }
}

GemmTileFn avx2_gemm_tile(DType wt, int tp) { return tp == 2 ? pick<2>(wt) : pick<1>(wt); }

}  // namespace strata::cpu

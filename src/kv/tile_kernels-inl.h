// SIMD bodies of the tile-format attention kernels (tile_kernels.h), written once over a
// small vector-traits struct and instantiated by tile_kernels_avx2.cpp (V8: 8 float lanes)
// and tile_kernels_avx512.cpp (V16: 16 lanes). Include only from files compiled with the
// matching target flags: everything here has internal linkage, so each ISA's translation
// unit keeps its own copy and the linker can never hand wider code to a narrower caller.
//
// Work unit: 4 vectors = 4·W codes of one packed row (64 codes for V16, 32 for V8). With
// the stripe order of varn.h a unit costs one or two zero-extending byte loads, a shift
// and a mask per vector and an int->float convert; the folded scales (spec §2.8) make
// the rest pure FMAs:
//   keys   (channel-major rows of G codes): for each 4W-token unit, loop over the D
//          channels: acc[j][k] += a_j[c] · code[c][t]   (a_j = q_j ⊙ s1K, broadcast)
//          then score = s2K ⊙ (acc + beta_j), beta_j = q_j · zK;
//   values (token-major rows of D codes): for each 4W-channel unit, loop over the G
//          tokens: acc[j][k] += w_j[t] · code[t][c]   (w_j = p_j ⊙ s1V)
//          then out_j += s2V ⊙ (acc + gamma_j), gamma_j = p_j · zV.
// Each unpacked code vector is reused by up to 3 query heads of the KV head's group (GQA),
// so 4·3 = 12 accumulators stay in registers (16 ymm / 32 zmm available).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kv/tile_kernels.h"
#include "kv/varn.h"

namespace strata::kv {
namespace {

#if defined(STRATA_TILE_V16)
struct V {
    using F = __m512;
    using I = __m512i;
    static constexpr int W = 16;
    static F zero() { return _mm512_setzero_ps(); }
    static F set1(float x) { return _mm512_set1_ps(x); }
    static F load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
    static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
    static F add(F a, F b) { return _mm512_add_ps(a, b); }
    static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
    static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
    static F max(F a, F b) { return _mm512_max_ps(a, b); }
    static F half(const uint16_t* p) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
    // W bytes zero-extended to 32-bit lanes.
    static I bytes(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    // The 3-bit high plane of one 64-code block (8 bytes): lane j gets byte j%8 >> 4·(j/8).
    static I hi_bits(const uint8_t* p, int) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        const I b = _mm512_cvtepu8_epi32(_mm_set1_epi64x(int64_t(v)));
        return _mm512_srlv_epi32(b, _mm512_set_epi32(4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0));
    }
    template <int S>
    static I srl(I v) { return _mm512_srli_epi32(v, S); }
    template <int S>
    static I sll(I v) { return _mm512_slli_epi32(v, S); }
    static I and_(I v, int m) { return _mm512_and_si512(v, _mm512_set1_epi32(m)); }
    static I or_(I a, I b) { return _mm512_or_si512(a, b); }
    static F cvt(I v) { return _mm512_cvtepi32_ps(v); }
    static float hsum(F v) {
        const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                                       _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        __m128 r = _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
        r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        r = _mm_add_ss(r, _mm_movehdup_ps(r));
        return _mm_cvtss_f32(r);
    }
    static float hmax(F v) {
        const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v),
                                       _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        __m128 r = _mm_max_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
        r = _mm_max_ps(r, _mm_movehl_ps(r, r));
        r = _mm_max_ss(r, _mm_movehdup_ps(r));
        return _mm_cvtss_f32(r);
    }
    static F round(F x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static F pow2(F n) {  // 2^n for integral n in [-126, 127]
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
    }
};
#else
struct V {
    using F = __m256;
    using I = __m256i;
    static constexpr int W = 8;
    static F zero() { return _mm256_setzero_ps(); }
    static F set1(float x) { return _mm256_set1_ps(x); }
    static F load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
    static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
    static F add(F a, F b) { return _mm256_add_ps(a, b); }
    static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
    static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
    static F max(F a, F b) { return _mm256_max_ps(a, b); }
    static F half(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static I bytes(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
    // Lane j of the half `h` of a 64-code block: byte j >> 4·h of the 8-byte high plane.
    static I hi_bits(const uint8_t* p, int h) { return _mm256_srl_epi32(bytes(p), _mm_cvtsi32_si128(4 * h)); }
    template <int S>
    static I srl(I v) { return _mm256_srli_epi32(v, S); }
    template <int S>
    static I sll(I v) { return _mm256_slli_epi32(v, S); }
    static I and_(I v, int m) { return _mm256_and_si256(v, _mm256_set1_epi32(m)); }
    static I or_(I a, I b) { return _mm256_or_si256(a, b); }
    static F cvt(I v) { return _mm256_cvtepi32_ps(v); }
    static float hsum(F v) {
        __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
        r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        r = _mm_add_ss(r, _mm_movehdup_ps(r));
        return _mm_cvtss_f32(r);
    }
    static float hmax(F v) {
        __m128 r = _mm_max_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
        r = _mm_max_ps(r, _mm_movehl_ps(r, r));
        r = _mm_max_ss(r, _mm_movehdup_ps(r));
        return _mm_cvtss_f32(r);
    }
    static F round(F x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static F pow2(F n) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
    }
};
#endif

using F = V::F;
constexpr int W = V::W;
constexpr int kUnit = 4 * W;  // codes per work unit
constexpr int kMaxHeads = 3;  // query heads per pass (12 accumulators)

// Offset (in codes) of vector x[k] of unit u of a stripe-ordered row (varn.h), as
// unpack_unit orders them. V16: 16 consecutive codes per vector, unit = 64 codes. V8,
// 4 bits: unit = one 32-code block, vectors in ascending 8-code groups. V8, 2/3 bits:
// unit = bytes 0-7 or 8-15 of a 64-code block, vector k = codes 8h + 16k .. +7.
template <int B>
constexpr int vec_off(int u, int k) {
    if constexpr (W == 16) return 64 * u + 16 * k;
    if constexpr (B == 4) return 32 * u + 8 * k;
    return 64 * (u >> 1) + 8 * (u & 1) + 16 * k;
}

// The 4 code vectors of unit u of a row of n codes, as floats.
template <int B>
inline void unpack_unit(const uint8_t* row, int n, int u, F x[4]) {
    if constexpr (B == 4) {
        const uint8_t* p = W == 16 ? row + 32 * u : row + 16 * u;
        const V::I b0 = V::bytes(p), b1 = V::bytes(p + W);
        if constexpr (W == 16) {
            x[0] = V::cvt(V::and_(b0, 15)), x[1] = V::cvt(V::srl<4>(b0));
            x[2] = V::cvt(V::and_(b1, 15)), x[3] = V::cvt(V::srl<4>(b1));
        } else {  // b0: codes 0-7 / 16-23 of the block, b1: 8-15 / 24-31
            x[0] = V::cvt(V::and_(b0, 15)), x[1] = V::cvt(V::and_(b1, 15));
            x[2] = V::cvt(V::srl<4>(b0)), x[3] = V::cvt(V::srl<4>(b1));
        }
    } else {
        const int blk = W == 16 ? u : u >> 1, h = W == 16 ? 0 : u & 1;
        const V::I b = V::bytes(row + 16 * blk + 8 * h);
        V::I c0 = V::and_(b, 3), c1 = V::and_(V::srl<2>(b), 3), c2 = V::and_(V::srl<4>(b), 3), c3 = V::srl<6>(b);
        if constexpr (B == 3) {
            const V::I hb = V::hi_bits(row + n / 4 + 8 * blk, h);
            c0 = V::or_(c0, V::sll<2>(V::and_(hb, 1)));
            c1 = V::or_(c1, V::sll<1>(V::and_(hb, 2)));
            c2 = V::or_(c2, V::and_(hb, 4));
            c3 = V::or_(c3, V::srl<1>(V::and_(hb, 8)));
        }
        x[0] = V::cvt(c0), x[1] = V::cvt(c1), x[2] = V::cvt(c2), x[3] = V::cvt(c3);
    }
}

inline const uint16_t* f16p(const uint8_t* rec, size_t off) { return reinterpret_cast<const uint16_t*>(rec + off); }

template <int B, int HB>
void scores_hb(const TileLayout& L, const uint8_t* rec, const float* a, const float* beta, float* out, size_t ld) {
    const int D = L.D, G = L.G;
    const size_t rb = packed_bytes(G, B);
    const uint8_t* kc = rec + L.k_codes;
    const uint16_t* s2 = f16p(rec, L.s2k);
    for (int u = 0; u < G / kUnit; ++u) {
        F acc[HB][4];
        for (int j = 0; j < HB; ++j)
            for (int k = 0; k < 4; ++k) acc[j][k] = V::zero();
        const uint8_t* row = kc;
        for (int c = 0; c < D; ++c, row += rb) {
            F x[4];
            unpack_unit<B>(row, G, u, x);
            for (int j = 0; j < HB; ++j) {
                const F aj = V::set1(a[j * D + c]);
                for (int k = 0; k < 4; ++k) acc[j][k] = V::fma(aj, x[k], acc[j][k]);
            }
        }
        for (int k = 0; k < 4; ++k) {
            const int o = vec_off<B>(u, k);
            const F s = L.scales2 ? V::half(s2 + o) : V::set1(1.f);
            for (int j = 0; j < HB; ++j) V::store(out + size_t(j) * ld + size_t(o), V::mul(s, V::add(acc[j][k], V::set1(beta[j]))));
        }
    }
}

template <int B>
void scores_b(const TileLayout& L, const uint8_t* rec, const float* q, int g, float* scores, size_t ld, float* scratch) {
    const int D = L.D;
    float* a = scratch;                      // [g][D]: q_j ⊙ s1K
    float* beta = scratch + size_t(g) * D;  // [g]:    q_j · zK
    const uint16_t* s1 = f16p(rec, L.s1k);
    const uint16_t* z = f16p(rec, L.zk);
    for (int j = 0; j < g; ++j) {
        F b = V::zero();
        for (int c = 0; c < D; c += W) {
            const F qv = V::load(q + size_t(j) * D + c);
            V::store(a + size_t(j) * D + c, V::mul(qv, V::half(s1 + c)));
            b = V::fma(qv, V::half(z + c), b);
        }
        beta[j] = V::hsum(b);
    }
    for (int j0 = 0; j0 < g; j0 += kMaxHeads) {
        const float* aj = a + size_t(j0) * D;
        float* o = scores + size_t(j0) * ld;
        switch (std::min(kMaxHeads, g - j0)) {
            case 1: scores_hb<B, 1>(L, rec, aj, beta + j0, o, ld); break;
            case 2: scores_hb<B, 2>(L, rec, aj, beta + j0, o, ld); break;
            default: scores_hb<B, 3>(L, rec, aj, beta + j0, o, ld); break;
        }
    }
}

void simd_scores(const TileLayout& L, const uint8_t* rec, const float* q, int g, float* scores, size_t ld, float* scratch) {
    switch (L.bk) {
        case 2: return scores_b<2>(L, rec, q, g, scores, ld, scratch);
        case 3: return scores_b<3>(L, rec, q, g, scores, ld, scratch);
        default: return scores_b<4>(L, rec, q, g, scores, ld, scratch);
    }
}

template <int B, int HB>
void values_hb(const TileLayout& L, const uint8_t* rec, const float* w, const float* gamma, float* out) {
    const int D = L.D, G = L.G;
    const size_t rb = packed_bytes(D, B);
    const uint8_t* vc = rec + L.v_codes;
    const uint16_t* s2 = f16p(rec, L.s2v);
    for (int u = 0; u < D / kUnit; ++u) {
        F acc[HB][4];
        for (int j = 0; j < HB; ++j)
            for (int k = 0; k < 4; ++k) acc[j][k] = V::zero();
        const uint8_t* row = vc;
        for (int t = 0; t < G; ++t, row += rb) {
            F x[4];
            unpack_unit<B>(row, D, u, x);
            for (int j = 0; j < HB; ++j) {
                const F wj = V::set1(w[j * G + t]);
                for (int k = 0; k < 4; ++k) acc[j][k] = V::fma(wj, x[k], acc[j][k]);
            }
        }
        for (int k = 0; k < 4; ++k) {
            const int o = vec_off<B>(u, k);
            for (int j = 0; j < HB; ++j) {
                float* dst = out + size_t(j) * D + o;
                const F t = V::add(acc[j][k], V::set1(gamma[j]));
                V::store(dst, L.scales2 ? V::fma(V::half(s2 + o), t, V::load(dst)) : V::add(V::load(dst), t));
            }
        }
    }
}

template <int B>
void values_b(const TileLayout& L, const uint8_t* rec, const float* p, size_t ld, int g, float* out, float* scratch) {
    const int D = L.D, G = L.G;
    float* w = scratch;                       // [g][G]: p_j ⊙ s1V
    float* gamma = scratch + size_t(g) * G;  // [g]:    p_j · zV
    const uint16_t* s1 = f16p(rec, L.s1v);
    const uint16_t* z = f16p(rec, L.zv);
    for (int j = 0; j < g; ++j) {
        F gm = V::zero();
        for (int t = 0; t < G; t += W) {
            const F pv = V::load(p + size_t(j) * ld + t);
            V::store(w + size_t(j) * G + t, V::mul(pv, V::half(s1 + t)));
            gm = V::fma(pv, V::half(z + t), gm);
        }
        gamma[j] = V::hsum(gm);
    }
    for (int j0 = 0; j0 < g; j0 += kMaxHeads) {
        const float* wj = w + size_t(j0) * G;
        float* o = out + size_t(j0) * D;
        switch (std::min(kMaxHeads, g - j0)) {
            case 1: values_hb<B, 1>(L, rec, wj, gamma + j0, o); break;
            case 2: values_hb<B, 2>(L, rec, wj, gamma + j0, o); break;
            default: values_hb<B, 3>(L, rec, wj, gamma + j0, o); break;
        }
    }
}

void simd_values(const TileLayout& L, const uint8_t* rec, const float* p, size_t ld, int g, float* out, float* scratch) {
    switch (L.bv) {
        case 2: return values_b<2>(L, rec, p, ld, g, out, scratch);
        case 3: return values_b<3>(L, rec, p, ld, g, out, scratch);
        default: return values_b<4>(L, rec, p, ld, g, out, scratch);
    }
}

// FP16 rows. Scores: D/W FMAs per (row, head) then one horizontal sum.
template <int HB>
void fp_scores_hb(const uint16_t* rows, size_t stride, int n, int D, const float* q, float* out, size_t ld) {
    for (int i = 0; i < n; ++i) {
        const uint16_t* r = rows + size_t(i) * stride;
        F acc[HB];
        for (int j = 0; j < HB; ++j) acc[j] = V::zero();
        for (int d = 0; d < D; d += W) {
            const F x = V::half(r + d);
            for (int j = 0; j < HB; ++j) acc[j] = V::fma(V::load(q + size_t(j) * D + d), x, acc[j]);
        }
        for (int j = 0; j < HB; ++j) out[size_t(j) * ld + size_t(i)] = V::hsum(acc[j]);
    }
}

void simd_fp_scores(const uint16_t* rows, size_t stride, int n, int D, const float* q, int g, float* scores, size_t ld) {
    for (int j0 = 0; j0 < g; j0 += kMaxHeads) {
        const float* qj = q + size_t(j0) * D;
        float* o = scores + size_t(j0) * ld;
        switch (std::min(kMaxHeads, g - j0)) {
            case 1: fp_scores_hb<1>(rows, stride, n, D, qj, o, ld); break;
            case 2: fp_scores_hb<2>(rows, stride, n, D, qj, o, ld); break;
            default: fp_scores_hb<3>(rows, stride, n, D, qj, o, ld); break;
        }
    }
}

// Values: 4W channels at a time in registers, rows streamed.
template <int HB>
void fp_values_hb(const uint16_t* rows, size_t stride, int n, int D, const float* p, size_t ld, float* out) {
    for (int d0 = 0; d0 < D; d0 += kUnit) {
        F acc[HB][4];
        for (int j = 0; j < HB; ++j)
            for (int k = 0; k < 4; ++k) acc[j][k] = V::zero();
        for (int i = 0; i < n; ++i) {
            const uint16_t* r = rows + size_t(i) * stride + d0;
            F x[4];
            for (int k = 0; k < 4; ++k) x[k] = V::half(r + k * W);
            for (int j = 0; j < HB; ++j) {
                const F wj = V::set1(p[size_t(j) * ld + size_t(i)]);
                for (int k = 0; k < 4; ++k) acc[j][k] = V::fma(wj, x[k], acc[j][k]);
            }
        }
        for (int j = 0; j < HB; ++j)
            for (int k = 0; k < 4; ++k) {
                float* dst = out + size_t(j) * D + d0 + k * W;
                V::store(dst, V::add(V::load(dst), acc[j][k]));
            }
    }
}

void simd_fp_values(const uint16_t* rows, size_t stride, int n, int D, const float* p, size_t ld, int g, float* out) {
    for (int j0 = 0; j0 < g; j0 += kMaxHeads) {
        const float* pj = p + size_t(j0) * ld;
        float* o = out + size_t(j0) * D;
        switch (std::min(kMaxHeads, g - j0)) {
            case 1: fp_values_hb<1>(rows, stride, n, D, pj, ld, o); break;
            case 2: fp_values_hb<2>(rows, stride, n, D, pj, ld, o); break;
            default: fp_values_hb<3>(rows, stride, n, D, pj, ld, o); break;
        }
    }
}

float simd_max(const float* x, int n) {
    int i = 0;
    float m = -INFINITY;
    if (n >= W) {
        F v = V::load(x);
        for (i = W; i + W <= n; i += W) v = V::max(v, V::load(x + i));
        m = V::hmax(v);
    }
    for (; i < n; ++i) m = std::max(m, x[i]);
    return m;
}

// exp(x) for x <= 0 (scores minus their max): Cephes' expf reduction and degree-6
// polynomial, about 1 ulp; inputs below -87.3 give ~1e-38 instead of 0 (harmless next
// to the max term, which is 1).
inline F vexp(F x) {
    x = V::max(x, V::set1(-87.3f));
    const F n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
    F r = V::fma(n, V::set1(-0.693359375f), x);
    r = V::fma(n, V::set1(2.12194440e-4f), r);
    F y = V::set1(1.9875691500e-4f);
    y = V::fma(y, r, V::set1(1.3981999507e-3f));
    y = V::fma(y, r, V::set1(8.3334519073e-3f));
    y = V::fma(y, r, V::set1(4.1665795894e-2f));
    y = V::fma(y, r, V::set1(1.6666665459e-1f));
    y = V::fma(y, r, V::set1(5.0000001201e-1f));
    y = V::fma(y, V::mul(r, r), V::add(r, V::set1(1.f)));
    return V::mul(y, V::pow2(n));
}

double simd_exp_sum(float* x, int n, float m) {
    const F mv = V::set1(m);
    double sum = 0;
    int i = 0;
    while (i + W <= n) {
        F s = V::zero();
        // Float partial sums over at most 256 values, then double (spec: sums in FP32 or better).
        for (int e = std::min(n, i + 256); i + W <= e; i += W) {
            const F y = vexp(V::sub(V::load(x + i), mv));
            V::store(x + i, y);
            s = V::add(s, y);
        }
        sum += double(V::hsum(s));
    }
    for (; i < n; ++i) sum += x[i] = std::exp(x[i] - m);
    return sum;
}

}  // namespace
}  // namespace strata::kv

// AVX-512 kernels of the f32-activation mode (kernels.h): decode (1..8 tokens) and the
// prefill tile. Both follow the 16-lane order, one 512-bit accumulator per (row, token):
// lane l of a block's first register holds value 32i + l and of its second 32i + 16 + l,
// so each lane sees its values in ascending order, fused as in f32_lane_dot.
//
// Decode streams the weights once: a few rows' blocks are dequantized in registers
// (integer codes -> float -> fma with the block scale and minimum, which equals the
// reference dequantization exactly) and reused for every token, with no buffer in
// between. Formats without a register path are dequantized a 256-value chunk at a time
// into a per-thread buffer and read from there.
//
// GCC 12's AVX-512 intrinsics trip -W(maybe-)uninitialized inside immintrin.h; the pragmas
// must precede the include.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tensor/cpu/simd.h"
#include "tensor/cpu/x86_common-inl.h"

namespace strata::cpu {

namespace {

using x86::h2f;
using x86::load_u32;

// Lanes i and i+8 added, then ggml's hsum_float_8 order (F32Lanes::sum).
inline float reduce16(__m512 v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return x86::hsum8(_mm256_add_ps(lo, hi));
}

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }  // no std:: templates here (simd.h)

enum class Fmt { kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0 };

template <Fmt F>
constexpr size_t kBlockBytes = F == Fmt::kQ4_0 ? 18 : F == Fmt::kQ4_1 ? 20 : F == Fmt::kQ5_0 ? 22
                             : F == Fmt::kQ5_1 ? 24 : 34;

// One 32-value block -> values 0-15 in *w0, 16-31 in *w1. Every product code·d is exact
// in f32, so fma(code, d, m) rounds once, as the reference's code·d + m does.
template <Fmt F>
inline void dequant_block(const uint8_t* b, __m512* w0, __m512* w1) {
    if constexpr (F == Fmt::kQ8_0) {
        const __m512 d = _mm512_set1_ps(h2f(uint16_t(b[0] | b[1] << 8)));
        const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
        const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 18));
        *w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d);
        *w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d);
    } else {
        constexpr bool kMin = F == Fmt::kQ4_1 || F == Fmt::kQ5_1;
        constexpr bool kHigh = F == Fmt::kQ5_0 || F == Fmt::kQ5_1;
        constexpr size_t kQs = F == Fmt::kQ4_0 ? 2 : F == Fmt::kQ4_1 ? 4 : F == Fmt::kQ5_0 ? 6 : 8;
        uint16_t dh, mh = 0;
        std::memcpy(&dh, b, 2);
        if constexpr (kMin) std::memcpy(&mh, b + 2, 2);
        const float d = h2f(dh);
        // Symmetric formats store code = q + offset: value = (code - offset)·d, exactly
        // fma(code, d, -offset·d) (both terms and the sum are exact).
        const float m = kMin ? h2f(mh) : F == Fmt::kQ4_0 ? -8.f * d : -16.f * d;
        const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kQs)));
        __m512i lo = _mm512_and_si512(bytes, _mm512_set1_epi32(0x0F));
        __m512i hi = _mm512_srli_epi32(bytes, 4);
        if constexpr (kHigh) {
            const uint32_t h = load_u32(b + (kMin ? 4 : 2));
            const __m512i sixteen = _mm512_set1_epi32(16);
            lo = _mm512_mask_add_epi32(lo, __mmask16(h & 0xFFFF), lo, sixteen);
            hi = _mm512_mask_add_epi32(hi, __mmask16(h >> 16), hi, sixteen);
        }
        const __m512 vd = _mm512_set1_ps(d), vm = _mm512_set1_ps(m);
        *w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), vd, vm);
        *w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), vd, vm);
    }
}

// Rows are short (360-960 bytes for SmolLM2), so the hardware prefetcher sees several
// short streams per pass and trains too late: each pass fetches the rows kPfRows ahead
// itself, R blocks' worth of bytes per block step, so it walks the whole of that group.
constexpr int64_t kPfRows = 32;

// 4-bit formats take their values from a 16-entry table per block and row:
// T[c] = fma(c, d, m) (m = -8d for Q4_0), the reference value of code c exactly, and one
// permute per 16 values picks T[code] (vpermps reads the low 4 bits of each index, so the
// low nibbles need no mask). The block scales are converted once per pass into dm.
constexpr bool table_fmt(Fmt F) { return F == Fmt::kQ4_0 || F == Fmt::kQ4_1; }

template <Fmt F, int R>
void block_scales(const uint8_t* w, size_t rb, int64_t nb, float* dm) {  // dm[(i * R + r) * 2 + {0, 1}]
    for (int64_t i = 0; i < nb; ++i)
        for (int r = 0; r < R; ++r) {
            const uint8_t* b = w + size_t(r) * rb + size_t(i) * kBlockBytes<F>;
            float* o = dm + (i * R + r) * 2;
            if constexpr (F == Fmt::kQ4_1) {
                _mm_storel_pi(reinterpret_cast<__m64*>(o), _mm_cvtph_ps(_mm_cvtsi32_si128(int(load_u32(b)))));
            } else {
                uint16_t h;
                std::memcpy(&h, b, 2);
                o[0] = h2f(h), o[1] = -8.f * o[0];
            }
        }
}

// R rows x B tokens, register-resident blocks: y[t * ldy + row0 + r].
template <Fmt F, int R, int B>
void decode_block_rows(const uint8_t* w, size_t rb, int64_t nb, const float* x, int64_t ldx, float* y,
                       int64_t ldy, int64_t row0, const uint8_t* pf_end, float* dm) {
    __m512 acc[R][B];
    for (auto& a : acc)
        for (auto& v : a) v = _mm512_setzero_ps();
    if constexpr (table_fmt(F)) block_scales<F, R>(w, rb, nb, dm);
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const uint8_t* pf = w + size_t(kPfRows) * rb;
    for (int64_t i = 0; i < nb; ++i) {
        if (pf < pf_end)
            for (size_t o = 0; o < R * kBlockBytes<F>; o += 64) _mm_prefetch(reinterpret_cast<const char*>(pf + o), _MM_HINT_T0);
        pf += R * kBlockBytes<F>;
        __m512 w0[R], w1[R];
        for (int r = 0; r < R; ++r) {
            const uint8_t* b = w + size_t(r) * rb + size_t(i) * kBlockBytes<F>;
            if constexpr (table_fmt(F)) {
                const float* s = dm + (i * R + r) * 2;
                const __m512 t = _mm512_fmadd_ps(iota, _mm512_set1_ps(s[0]), _mm512_set1_ps(s[1]));
                constexpr size_t kQs = F == Fmt::kQ4_0 ? 2 : 4;
                const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kQs)));
                w0[r] = _mm512_permutexvar_ps(idx, t);
                w1[r] = _mm512_permutexvar_ps(_mm512_srli_epi32(idx, 4), t);
            } else {
                dequant_block<F>(b, &w0[r], &w1[r]);
            }
        }
        for (int t = 0; t < B; ++t) {
            const __m512 x0 = _mm512_loadu_ps(x + t * ldx + 32 * i), x1 = _mm512_loadu_ps(x + t * ldx + 32 * i + 16);
            for (int r = 0; r < R; ++r) {
                acc[r][t] = _mm512_fmadd_ps(w0[r], x0, acc[r][t]);
                acc[r][t] = _mm512_fmadd_ps(w1[r], x1, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < B; ++t) y[t * ldy + row0 + r] = reduce16(acc[r][t]);
}

template <Fmt F, int B>
void decode_fmt(const uint8_t* w, size_t rb, int64_t cols, const float* x, float* y, int64_t ldy, int64_t r0,
                int64_t r1) {
    // Rows per pass: R x B accumulators plus 2R weight registers and two activation
    // registers must fit the 32 zmm registers.
    constexpr int R = B == 1 ? 8 : B <= 4 ? 4 : 2;
    const int64_t nb = cols / 32;
    // Each call begins cold: start the first kPfRows rows' loads now.
    const uint8_t* pf_end = w + size_t(r1) * rb;
    for (const uint8_t *p = w + size_t(r0) * rb, *e = w + size_t(min64(r1, r0 + kPfRows)) * rb; p < e; p += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    float* dm = reinterpret_cast<float*>(thread_scratch(kScratchMatvec, size_t(nb * R * 2) * sizeof(float)));
    int64_t r = r0;
    for (; r + R <= r1; r += R) decode_block_rows<F, R, B>(w + size_t(r) * rb, rb, nb, x, cols, y, ldy, r, pf_end, dm);
    for (; r < r1; ++r) decode_block_rows<F, 1, B>(w + size_t(r) * rb, rb, nb, x, cols, y, ldy, r, pf_end, dm);
}

template <Fmt F>
void decode_fmt_any(const uint8_t* w, size_t rb, int64_t cols, const float* x, int64_t n_tok, float* y,
                    int64_t ldy, int64_t r0, int64_t r1) {
    switch (n_tok) {
        case 1: return decode_fmt<F, 1>(w, rb, cols, x, y, ldy, r0, r1);
        case 2: return decode_fmt<F, 2>(w, rb, cols, x, y, ldy, r0, r1);
        case 3: return decode_fmt<F, 3>(w, rb, cols, x, y, ldy, r0, r1);
        case 4: return decode_fmt<F, 4>(w, rb, cols, x, y, ldy, r0, r1);
        case 5: return decode_fmt<F, 5>(w, rb, cols, x, y, ldy, r0, r1);
        case 6: return decode_fmt<F, 6>(w, rb, cols, x, y, ldy, r0, r1);
        case 7: return decode_fmt<F, 7>(w, rb, cols, x, y, ldy, r0, r1);
        default: return decode_fmt<F, 8>(w, rb, cols, x, y, ldy, r0, r1);
    }
}

// The 6-bit scales (bytes 0-7) and minimums (8-15) of a Q4_K/Q5_K super-block (ggml's
// unpacking, written out: no header inline code here, see simd.h).
inline void k4_scales(const uint8_t* b, uint8_t* out16) {
    uint32_t u[4];
    std::memcpy(u, b + 4, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    const uint32_t aux = u[1] & 0x3f3f3f3f;
    u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    u[2] = aux;
    u[0] &= 0x3f3f3f3f;
    std::memcpy(out16, u, 16);
}

// ---- K-quants, register-resident ---------------------------------------------------------
// Per row and super-block the group scales are converted once (Q4_K/Q5_K: d·sc and -dmin·m
// for the 8 groups; Q6_K: d·sc for the 16 halves), then each 32-value group is built in two
// registers and reused for every token, as decode_block_rows does for 32-value blocks:
// Q4_K looks codes up in a 16-entry table of exact values, Q5_K in a 32-entry one
// (vpermt2ps), Q6_K converts (code - 32) and multiplies by d·sc (exact).
template <DType W>
constexpr size_t kKqBytes = W == DType::Q4_K ? 144 : W == DType::Q5_K ? 176 : 210;

template <DType W>
inline void kq_row_scales(const uint8_t* b, float* s16) {
    if constexpr (W == DType::Q6_K) {
        const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192))));
        _mm512_store_ps(s16, _mm512_mul_ps(sc, _mm512_set1_ps(h2f(uint16_t(b[208] | b[209] << 8)))));
    } else {
        alignas(16) uint8_t sm[16];
        k4_scales(b, sm);
        const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sm))));
        const float d = h2f(uint16_t(b[0] | b[1] << 8)), dmin = h2f(uint16_t(b[2] | b[3] << 8));
        // lanes 0-7: d·sc (exact); 8-15: -(dmin·m) (exact, then negated)
        _mm512_store_ps(s16, _mm512_mul_ps(v, _mm512_mask_mov_ps(_mm512_set1_ps(d), __mmask16(0xFF00), _mm512_set1_ps(-dmin))));
    }
}

// Group g of one super-block: values 32g..32g+15 in *w0, 32g+16..32g+31 in *w1.
template <DType W>
inline void kq_group(const uint8_t* b, const float* s16, int g, __m512* w0, __m512* w1) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    if constexpr (W == DType::Q6_K) {
        const int h = g / 4, k = g % 4;
        const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h + 32 * (k & 1)));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h));
        const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (k >> 1))), _mm256_set1_epi8(0x0F));
        const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k)), _mm256_set1_epi8(3));
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi8(32));
        *w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q))), _mm512_set1_ps(s16[2 * g]));
        *w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1))),
                            _mm512_set1_ps(s16[2 * g + 1]));
    } else {
        constexpr size_t kQs = W == DType::Q4_K ? 16 : 48;
        const uint8_t* qs = b + kQs + 32 * (g / 2);
        __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
        __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16)));
        if (g % 2) a = _mm512_srli_epi32(a, 4), c = _mm512_srli_epi32(c, 4);
        const __m512 vd = _mm512_set1_ps(s16[g]), vm = _mm512_set1_ps(s16[8 + g]);
        const __m512 t = _mm512_fmadd_ps(iota, vd, vm);  // code c -> fma(c, d·sc, -dmin·m)
        if constexpr (W == DType::Q4_K) {
            *w0 = _mm512_permutexvar_ps(a, t);  // vpermps reads the low 4 bits
            *w1 = _mm512_permutexvar_ps(c, t);
        } else {
            const __m512 t2 = _mm512_fmadd_ps(_mm512_add_ps(iota, _mm512_set1_ps(16.f)), vd, vm);
            const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
            const uint32_t hb = uint32_t(_mm256_movemask_epi8(_mm256_sll_epi16(qh, _mm_cvtsi32_si128(7 - g))));
            const __m512i m4 = _mm512_set1_epi32(0x0F), sixteen = _mm512_set1_epi32(16);
            a = _mm512_mask_add_epi32(_mm512_and_si512(a, m4), __mmask16(hb), _mm512_and_si512(a, m4), sixteen);
            c = _mm512_mask_add_epi32(_mm512_and_si512(c, m4), __mmask16(hb >> 16), _mm512_and_si512(c, m4), sixteen);
            *w0 = _mm512_permutex2var_ps(t, a, t2);
            *w1 = _mm512_permutex2var_ps(t, c, t2);
        }
    }
}

template <DType W, int R, int B>
void decode_kq_rows(const uint8_t* w, size_t rb, int64_t nsb, const float* x, int64_t ldx, float* y, int64_t ldy,
                    int64_t row0, const uint8_t* pf_end) {
    __m512 acc[R][B];
    for (auto& a : acc)
        for (auto& v : a) v = _mm512_setzero_ps();
    const uint8_t* pf = w + size_t(kPfRows) * rb;
    alignas(64) float s16[R][16];
    for (int64_t i = 0; i < nsb; ++i) {
        if (pf < pf_end)
            for (size_t o = 0; o < R * kKqBytes<W>; o += 64) _mm_prefetch(reinterpret_cast<const char*>(pf + o), _MM_HINT_T0);
        pf += R * kKqBytes<W>;
        for (int r = 0; r < R; ++r) kq_row_scales<W>(w + size_t(r) * rb + size_t(i) * kKqBytes<W>, s16[r]);
        for (int g = 0; g < 8; ++g) {
            __m512 w0[R], w1[R];
            for (int r = 0; r < R; ++r) kq_group<W>(w + size_t(r) * rb + size_t(i) * kKqBytes<W>, s16[r], g, &w0[r], &w1[r]);
            for (int t = 0; t < B; ++t) {
                const float* xp = x + t * ldx + 256 * i + 32 * g;
                const __m512 x0 = _mm512_loadu_ps(xp), x1 = _mm512_loadu_ps(xp + 16);
                for (int r = 0; r < R; ++r) {
                    acc[r][t] = _mm512_fmadd_ps(w0[r], x0, acc[r][t]);
                    acc[r][t] = _mm512_fmadd_ps(w1[r], x1, acc[r][t]);
                }
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < B; ++t) y[t * ldy + row0 + r] = reduce16(acc[r][t]);
}

template <DType W, int B>
void decode_kq(const uint8_t* w, size_t rb, int64_t cols, const float* x, float* y, int64_t ldy, int64_t r0, int64_t r1) {
    constexpr int R = B == 1 ? 8 : B <= 4 ? 4 : 2;  // as decode_fmt
    const int64_t nsb = cols / 256;
    const uint8_t* pf_end = w + size_t(r1) * rb;
    for (const uint8_t *p = w + size_t(r0) * rb, *e = w + size_t(min64(r1, r0 + kPfRows)) * rb; p < e; p += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    int64_t r = r0;
    for (; r + R <= r1; r += R) decode_kq_rows<W, R, B>(w + size_t(r) * rb, rb, nsb, x, cols, y, ldy, r, pf_end);
    for (; r < r1; ++r) decode_kq_rows<W, 1, B>(w + size_t(r) * rb, rb, nsb, x, cols, y, ldy, r, pf_end);
}

template <DType W>
void decode_kq_any(const uint8_t* w, size_t rb, int64_t cols, const float* x, int64_t n_tok, float* y, int64_t ldy,
                   int64_t r0, int64_t r1) {
    switch (n_tok) {
        case 1: return decode_kq<W, 1>(w, rb, cols, x, y, ldy, r0, r1);
        case 2: return decode_kq<W, 2>(w, rb, cols, x, y, ldy, r0, r1);
        case 3: return decode_kq<W, 3>(w, rb, cols, x, y, ldy, r0, r1);
        case 4: return decode_kq<W, 4>(w, rb, cols, x, y, ldy, r0, r1);
        case 5: return decode_kq<W, 5>(w, rb, cols, x, y, ldy, r0, r1);
        case 6: return decode_kq<W, 6>(w, rb, cols, x, y, ldy, r0, r1);
        case 7: return decode_kq<W, 7>(w, rb, cols, x, y, ldy, r0, r1);
        default: return decode_kq<W, 8>(w, rb, cols, x, y, ldy, r0, r1);
    }
}

// ---- any weight type: dequantized chunks in a buffer ------------------------------------

// ---- K-quant super-blocks ----------------------------------------------------------------
// 256 values into out, equal to dequantize_row's: a group's d·sc and dmin·m are exact f32
// products (11 + 6 bits), code·(d·sc) is exact too, so fma(code, d·sc, -dmin·m) rounds
// once as the reference's d1·code - m1 does; Q6_K's (d·sc)·(code - 32) is exact.

void dequant_q4_k(const uint8_t* b, float* out) {
    uint8_t sm[16];
    k4_scales(b, sm);
    const float d = h2f(uint16_t(b[0] | b[1] << 8)), dmin = h2f(uint16_t(b[2] | b[3] << 8));
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int j = 0; j < 4; ++j, out += 64) {
        // 16-entry tables of the exact values of each code (vpermps reads the low 4 bits).
        const __m512 t1 = _mm512_fmadd_ps(iota, _mm512_set1_ps(d * float(sm[2 * j])), _mm512_set1_ps(-(dmin * float(sm[8 + 2 * j]))));
        const __m512 t2 = _mm512_fmadd_ps(iota, _mm512_set1_ps(d * float(sm[2 * j + 1])),
                                          _mm512_set1_ps(-(dmin * float(sm[9 + 2 * j]))));
        const __m512i a = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 + 32 * j)));
        const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 + 32 * j)));
        _mm512_storeu_ps(out, _mm512_permutexvar_ps(a, t1));
        _mm512_storeu_ps(out + 16, _mm512_permutexvar_ps(c, t1));
        _mm512_storeu_ps(out + 32, _mm512_permutexvar_ps(_mm512_srli_epi32(a, 4), t2));
        _mm512_storeu_ps(out + 48, _mm512_permutexvar_ps(_mm512_srli_epi32(c, 4), t2));
    }
}

void dequant_q5_k(const uint8_t* b, float* out) {
    uint8_t sm[16];
    k4_scales(b, sm);
    const float d = h2f(uint16_t(b[0] | b[1] << 8)), dmin = h2f(uint16_t(b[2] | b[3] << 8));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
    const __m512i m4 = _mm512_set1_epi32(0x0F), sixteen = _mm512_set1_epi32(16);
    for (int g = 0; g < 8; ++g, out += 32) {
        const __m512 vd = _mm512_set1_ps(d * float(sm[g])), vm = _mm512_set1_ps(-(dmin * float(sm[8 + g])));
        // bit g of qh byte p, for p = 0..31
        const uint32_t hb = uint32_t(_mm256_movemask_epi8(_mm256_sll_epi16(qh, _mm_cvtsi32_si128(7 - g))));
        const uint8_t* qs = b + 48 + 32 * (g / 2);
        const int sh = 4 * (g % 2);
        for (int h = 0; h < 2; ++h) {
            __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16 * h)));
            c = _mm512_and_si512(_mm512_srl_epi32(c, _mm_cvtsi32_si128(sh)), m4);
            c = _mm512_mask_add_epi32(c, __mmask16(hb >> (16 * h)), c, sixteen);
            _mm512_storeu_ps(out + 16 * h, _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), vd, vm));
        }
    }
}

void dequant_q6_k(const uint8_t* b, float* out) {
    const float d = h2f(uint16_t(b[208] | b[209] << 8));
    const __m512i m4 = _mm512_set1_epi32(0x0F), m2 = _mm512_set1_epi32(3), off = _mm512_set1_epi32(32);
    for (int g = 0; g < 8; ++g) {
        const int h = g / 4, k = g % 4;
        for (int half = 0; half < 2; ++half, out += 16) {
            const uint8_t* ql = b + 64 * h + 32 * (k & 1) + 16 * half;
            const uint8_t* qh = b + 128 + 32 * h + 16 * half;
            __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ql)));
            __m512i hi = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qh)));
            lo = _mm512_and_si512(_mm512_srl_epi32(lo, _mm_cvtsi32_si128(4 * (k >> 1))), m4);
            hi = _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(hi, _mm_cvtsi32_si128(2 * k)), m2), 4);
            const __m512i q = _mm512_sub_epi32(_mm512_or_si512(lo, hi), off);
            const float ds = d * float(int8_t(b[192 + 2 * g + half]));
            _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(ds)));
        }
    }
}

// Values [k0, k0 + m) of a row (k0 a multiple of the type's block size) into out.
void dequant_span(DType wt, const uint8_t* row, int64_t k0, int64_t m, float* out) {
    switch (wt) {
        case DType::F16: {
            auto* h = reinterpret_cast<const uint16_t*>(row) + k0;
            int64_t j = 0;
            for (; j + 16 <= m; j += 16)
                _mm512_storeu_ps(out + j, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + j))));
            for (; j < m; ++j) out[j] = h2f(h[j]);
            return;
        }
        case DType::BF16: {
            auto* h = reinterpret_cast<const uint16_t*>(row) + k0;
            int64_t j = 0;
            for (; j + 16 <= m; j += 16) {
                const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + j)));
                _mm512_storeu_ps(out + j, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
            }
            for (; j < m; ++j) {
                const uint32_t u = uint32_t(h[j]) << 16;
                std::memcpy(out + j, &u, 4);
            }
            return;
        }
        case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: {
            const size_t bb = wt == DType::Q4_0 ? kBlockBytes<Fmt::kQ4_0> : wt == DType::Q4_1 ? kBlockBytes<Fmt::kQ4_1>
                            : wt == DType::Q5_0 ? kBlockBytes<Fmt::kQ5_0> : wt == DType::Q5_1 ? kBlockBytes<Fmt::kQ5_1>
                                                                                 : kBlockBytes<Fmt::kQ8_0>;
            for (int64_t j = 0; j < m; j += 32) {
                const uint8_t* b = row + size_t((k0 + j) / 32) * bb;
                __m512 a, c;
                switch (wt) {
                    case DType::Q4_0: dequant_block<Fmt::kQ4_0>(b, &a, &c); break;
                    case DType::Q4_1: dequant_block<Fmt::kQ4_1>(b, &a, &c); break;
                    case DType::Q5_0: dequant_block<Fmt::kQ5_0>(b, &a, &c); break;
                    case DType::Q5_1: dequant_block<Fmt::kQ5_1>(b, &a, &c); break;
                    default: dequant_block<Fmt::kQ8_0>(b, &a, &c); break;
                }
                _mm512_storeu_ps(out + j, a);
                _mm512_storeu_ps(out + j + 16, c);
            }
            return;
        }
        case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: {
            const size_t bb = wt == DType::Q4_K ? 144 : wt == DType::Q5_K ? 176 : 210;
            for (int64_t j = 0; j < m; j += 256) {
                const uint8_t* b = row + size_t((k0 + j) / 256) * bb;
                if (wt == DType::Q4_K) dequant_q4_k(b, out + j);
                else if (wt == DType::Q5_K) dequant_q5_k(b, out + j);
                else dequant_q6_k(b, out + j);
            }
            return;
        }
        default: {
            // Block geometry written out: no header inline code in this file (simd.h).
            size_t bs = 1, bb = 4;  // F32
            switch (wt) {
                case DType::IQ4_NL: bs = 32, bb = 18; break;
                default: break;
            }
            dequantize_row(wt, row + size_t(k0) / bs * bb, out, m);
            return;
        }
    }
}

inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }

// acc[r][t] += rows' values [k0, k0 + m) (in wf, row stride ldw) · tokens' values.
template <int R, int B>
inline void fma_span(__m512 (&acc)[R][B], const float* wf, int64_t ldw, const float* x, int64_t ldx, int64_t k0,
                     int64_t m) {
    // Masked loads only for a tail: on some CPUs (Zen 4) they cost several times a plain load.
    for (int64_t j = 0; j < m; j += 16) {
        __m512 wv[R];
        if (j + 16 <= m) {
            for (int r = 0; r < R; ++r) wv[r] = _mm512_loadu_ps(wf + r * ldw + j);
            for (int t = 0; t < B; ++t) {
                const __m512 xv = _mm512_loadu_ps(x + t * ldx + k0 + j);
                for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
            }
            continue;
        }
        const __mmask16 mk = tail_mask(m - j);
        for (int r = 0; r < R; ++r) wv[r] = _mm512_maskz_loadu_ps(mk, wf + r * ldw + j);
        for (int t = 0; t < B; ++t) {
            const __m512 xv = _mm512_maskz_loadu_ps(mk, x + t * ldx + k0 + j);
            for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
}

constexpr int64_t kChunk = 256;  // values per dequantized chunk (one K-quant super-block)

template <int R, int B>
void decode_generic_rows(DType wt, const uint8_t* w, size_t rb, int64_t cols, const float* x, float* y,
                         int64_t ldy, int64_t row0, float* buf) {
    __m512 acc[R][B];
    for (auto& a : acc)
        for (auto& v : a) v = _mm512_setzero_ps();
    for (int64_t k0 = 0; k0 < cols; k0 += kChunk) {
        const int64_t m = min64(kChunk, cols - k0);
        if (wt == DType::F32) {  // nothing to dequantize: rows are read in place
            fma_span<R, B>(acc, reinterpret_cast<const float*>(w) + k0, int64_t(rb / sizeof(float)), x, cols, k0, m);
            continue;
        }
        for (int r = 0; r < R; ++r) dequant_span(wt, w + size_t(r) * rb, k0, m, buf + r * kChunk);
        fma_span<R, B>(acc, buf, kChunk, x, cols, k0, m);
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < B; ++t) y[t * ldy + row0 + r] = reduce16(acc[r][t]);
}

template <int B>
void decode_generic(DType wt, const uint8_t* w, size_t rb, int64_t cols, const float* x, float* y, int64_t ldy,
                    int64_t r0, int64_t r1) {
    constexpr int R = B <= 4 ? 4 : 2;
    float* buf = reinterpret_cast<float*>(thread_scratch(kScratchF32Tile, size_t(R * kChunk) * sizeof(float)));
    int64_t r = r0;
    for (; r + R <= r1; r += R) decode_generic_rows<R, B>(wt, w + size_t(r) * rb, rb, cols, x, y, ldy, r, buf);
    for (; r < r1; ++r) decode_generic_rows<1, B>(wt, w + size_t(r) * rb, rb, cols, x, y, ldy, r, buf);
}

// ---- prefill tile -----------------------------------------------------------------------

template <int T>
void tile_pass(const float* wf, int64_t cols, const float* x, int64_t t0, float* y, int64_t ldy, int64_t row0,
               int rows) {
    constexpr int R = kGemmRows;
    __m512 acc[R][T];
    for (auto& a : acc)
        for (auto& v : a) v = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= cols; k += 16) {
        __m512 xv[T];
        for (int t = 0; t < T; ++t) xv[t] = _mm512_loadu_ps(x + (t0 + t) * cols + k);
        for (int r = 0; r < R; ++r) {
            const __m512 wv = _mm512_loadu_ps(wf + r * cols + k);
            for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    if (k < cols) {  // zero-padded tail
        const __mmask16 mk = tail_mask(cols - k);
        __m512 xv[T];
        for (int t = 0; t < T; ++t) xv[t] = _mm512_maskz_loadu_ps(mk, x + (t0 + t) * cols + k);
        for (int r = 0; r < R; ++r) {
            const __m512 wv = _mm512_maskz_loadu_ps(mk, wf + r * cols + k);
            for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < rows; ++r)
        for (int t = 0; t < T; ++t) y[(t0 + t) * ldy + row0 + r] = reduce16(acc[r][t]);
}

}  // namespace

void avx512_f32_decode(DType wt, const uint8_t* w, size_t rb, int64_t cols, const float* x, int64_t n_tok,
                       float* y, int64_t ldy, int64_t r0, int64_t r1) {
    if (n_tok < 1 || n_tok > kF32DecodeMax) {  // callers' invariant (matmul)
        std::fprintf(stderr, "strata: internal error: f32 decode of %lld tokens\n", static_cast<long long>(n_tok));
        std::abort();
    }
    const bool blocks = cols % 32 == 0;
    if (blocks) {
        switch (wt) {
            case DType::Q4_0: return decode_fmt_any<Fmt::kQ4_0>(w, rb, cols, x, n_tok, y, ldy, r0, r1);
            case DType::Q4_1: return decode_fmt_any<Fmt::kQ4_1>(w, rb, cols, x, n_tok, y, ldy, r0, r1);
            case DType::Q5_0: return decode_fmt_any<Fmt::kQ5_0>(w, rb, cols, x, n_tok, y, ldy, r0, r1);
            case DType::Q5_1: return decode_fmt_any<Fmt::kQ5_1>(w, rb, cols, x, n_tok, y, ldy, r0, r1);
            case DType::Q8_0: return decode_fmt_any<Fmt::kQ8_0>(w, rb, cols, x, n_tok, y, ldy, r0, r1);
            case DType::Q4_K: return decode_kq_any<DType::Q4_K>(w, rb, cols, x, n_tok, y, ldy, r0, r1);
            case DType::Q5_K: return decode_kq_any<DType::Q5_K>(w, rb, cols, x, n_tok, y, ldy, r0, r1);
            case DType::Q6_K: return decode_kq_any<DType::Q6_K>(w, rb, cols, x, n_tok, y, ldy, r0, r1);
            default: break;
        }
    }
    switch (n_tok) {
        case 1: return decode_generic<1>(wt, w, rb, cols, x, y, ldy, r0, r1);
        case 2: return decode_generic<2>(wt, w, rb, cols, x, y, ldy, r0, r1);
        case 3: return decode_generic<3>(wt, w, rb, cols, x, y, ldy, r0, r1);
        case 4: return decode_generic<4>(wt, w, rb, cols, x, y, ldy, r0, r1);
        case 5: return decode_generic<5>(wt, w, rb, cols, x, y, ldy, r0, r1);
        case 6: return decode_generic<6>(wt, w, rb, cols, x, y, ldy, r0, r1);
        case 7: return decode_generic<7>(wt, w, rb, cols, x, y, ldy, r0, r1);
        default: return decode_generic<8>(wt, w, rb, cols, x, y, ldy, r0, r1);
    }
}

void avx512_gemm_f32_tile(DType wt, const uint8_t* w, size_t rb, int rows, int64_t cols, float* wf, const float* x,
                          int64_t t0, int64_t t1, float* y, int64_t ldy, int64_t row0) {
    for (int r = 0; r < kGemmRows; ++r) {
        if (r < rows) dequant_span(wt, w + size_t(r) * rb, 0, cols, wf + r * cols);
        else std::memset(wf + r * cols, 0, size_t(cols) * sizeof(float));
    }
    int64_t t = t0;
    for (; t + 6 <= t1; t += 6) tile_pass<6>(wf, cols, x, t, y, ldy, row0, rows);
    switch (t1 - t) {
        case 5: tile_pass<5>(wf, cols, x, t, y, ldy, row0, rows); break;
        case 4: tile_pass<4>(wf, cols, x, t, y, ldy, row0, rows); break;
        case 3: tile_pass<3>(wf, cols, x, t, y, ldy, row0, rows); break;
        case 2: tile_pass<2>(wf, cols, x, t, y, ldy, row0, rows); break;
        case 1: tile_pass<1>(wf, cols, x, t, y, ldy, row0, rows); break;
        default: break;
    }
}

}  // namespace strata::cpu

// AVX2 K-quant kernels of the 8-bit mode (kquant.h): R weight rows x B tokens per pass,
// each 32-value group unpacked once into unsigned codes and multiplied with every token's
// 32 activation bytes (vpmaddubsw), the 16-bit pair sums times the group's scale
// (vpmaddwd) into 8 int32 lanes: lane i holds bytes 4i..4i+3 of every group, ggml vec_dot's
// AVX2 layout. The float operations after the integers are the scalar definition's
// (kquant.cpp) in its order, so every form equals it bit for bit.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "tensor/cpu/kquant.h"
#include "tensor/cpu/x86_common-inl.h"

namespace strata::cpu {

namespace {

using x86::h2f;
using x86::hsum8;

template <DType W>
constexpr size_t kBytes = W == DType::Q4_K ? 144 : W == DType::Q5_K ? 176 : 210;

struct Head {
    int16_t sc[16];  // group scales (Q6_K: per 16 values)
    __m128i m16;     // Q4_K/Q5_K minimums as int16
    float d, dmin;
};

template <DType W>
inline void head(const uint8_t* b, Head* h) {
    if constexpr (W == DType::Q6_K) {
        for (int s = 0; s < 16; ++s) h->sc[s] = int8_t(b[192 + s]);
        h->d = h2f(uint16_t(b[208] | b[209] << 8)), h->dmin = 0;
        h->m16 = _mm_setzero_si128();
    } else {
        uint32_t u[4];  // ggml's 12-byte scale unpacking: bytes 0-7 scales, 8-15 minimums
        std::memcpy(u, b + 4, 12);
        u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
        const uint32_t aux = u[1] & 0x3f3f3f3f;
        u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
        u[2] = aux;
        u[0] &= 0x3f3f3f3f;
        uint8_t bytes[16];
        std::memcpy(bytes, u, 16);
        for (int s = 0; s < 8; ++s) h->sc[s] = bytes[s];
        h->m16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, int(u[3]), int(u[2])));
        h->d = h2f(uint16_t(b[0] | b[1] << 8)), h->dmin = h2f(uint16_t(b[2] | b[3] << 8));
    }
}

// The 32 codes of group g (values 32g..32g+31), unsigned, in value order.
template <DType W>
inline __m256i group_codes(const uint8_t* b, int g) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    if constexpr (W == DType::Q6_K) {
        const int h = g / 4, k = g % 4;
        const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h + 32 * (k & 1)));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h));
        const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (k >> 1))), m4);
        const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k)), _mm256_set1_epi8(3));
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    } else {
        constexpr size_t kQs = W == DType::Q4_K ? 16 : 48;
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kQs + 32 * (g / 2)));
        __m256i c = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(4 * (g % 2))), m4);
        if constexpr (W == DType::Q5_K) {
            const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
            const __m256i hb = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(g)), _mm256_set1_epi8(1));
            c = _mm256_or_si256(c, _mm256_slli_epi16(hb, 4));
        }
        return c;
    }
}

template <DType W>
inline __m256i group_scales(const Head& h, int g) {
    if constexpr (W == DType::Q6_K)
        return _mm256_set_m128i(_mm_set1_epi16(h.sc[2 * g + 1]), _mm_set1_epi16(h.sc[2 * g]));
    else
        return _mm256_set1_epi16(h.sc[g]);
}

inline int32_t reduce_i32(__m128i s) {
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}
inline int32_t reduce_i32(__m256i v) {
    return reduce_i32(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

struct Acc {
    __m256 acc8;
    __m128 accm4;
    float summs, acc, accm;
};

template <DType W, int R, int B>
void rows_pass(KqForm f, int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_K* x, float* y, int64_t ldy) {
    Acc st[R][B];
    for (auto& a : st)
        for (auto& s : a) s.acc8 = _mm256_setzero_ps(), s.accm4 = _mm_setzero_ps(), s.summs = s.acc = s.accm = 0;
    const bool gemm = f == KqForm::kGemm;
    for (int64_t i = 0; i < nb; ++i) {
        Head hd[R];
        for (int r = 0; r < R; ++r) {
            const uint8_t* b = w + size_t(r) * rb + size_t(i) * kBytes<W>;
            _mm_prefetch(reinterpret_cast<const char*>(b + 8 * R * rb), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(b + 8 * R * rb + 64), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(b + 8 * R * rb + 128), _MM_HINT_T0);
            head<W>(b, &hd[r]);
        }
        __m128i prod4[R][B] = {};  // Q4_K/Q5_K: min4
        if constexpr (W != DType::Q6_K)
            for (int t = 0; t < B; ++t) {
                const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t * nb + i].bsums));
                const __m128i bs32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
                for (int r = 0; r < R; ++r) prod4[r][t] = _mm_madd_epi16(hd[r].m16, bs32);
            }
        __m256i iacc[R][B];
        for (auto& a : iacc)
            for (auto& v : a) v = _mm256_setzero_si256();
        for (int g = 0; g < 8; ++g) {
            __m256i xv[B];
            for (int t = 0; t < B; ++t) xv[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t * nb + i].qs + 32 * g));
            for (int r = 0; r < R; ++r) {
                const __m256i c = group_codes<W>(w + size_t(r) * rb + size_t(i) * kBytes<W>, g);
                const __m256i s = group_scales<W>(hd[r], g);
                for (int t = 0; t < B; ++t)
                    iacc[r][t] = _mm256_add_epi32(iacc[r][t], _mm256_madd_epi16(_mm256_maddubs_epi16(c, xv[t]), s));
            }
            if (!gemm || g % 2 == 0) continue;
            // q4_K 8x8 gemm: one fma per 64-value chunk (kquant.h)
            for (int r = 0; r < R; ++r)
                for (int t = 0; t < B; ++t) {
                    alignas(16) int32_t m4[4];
                    _mm_store_si128(reinterpret_cast<__m128i*>(m4), prod4[r][t]);
                    const float dx = x[t * nb + i].d;
                    st[r][t].acc = std::fma(float(reduce_i32(iacc[r][t])), hd[r].d * dx, st[r][t].acc);
                    st[r][t].accm = std::fma(float(m4[g / 2]), hd[r].dmin * dx, st[r][t].accm);
                    iacc[r][t] = _mm256_setzero_si256();
                }
        }
        if (gemm) continue;
        for (int r = 0; r < R; ++r)
            for (int t = 0; t < B; ++t) {
                Acc& s = st[r][t];
                const float dx = x[t * nb + i].d;
                __m256i v8 = iacc[r][t];
                if constexpr (W == DType::Q6_K) {  // the -32 offset, per lane as ggml subtracts it
                    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t * nb + i].bsums));
                    const __m256i sc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hd[r].sc));
                    v8 = _mm256_sub_epi32(v8, _mm256_slli_epi32(_mm256_madd_epi16(bs, sc), 5));
                }
                if (f == KqForm::kVecDot) {
                    s.acc8 = _mm256_fmadd_ps(_mm256_set1_ps(dx * hd[r].d), _mm256_cvtepi32_ps(v8), s.acc8);
                    if constexpr (W == DType::Q4_K)
                        s.accm4 = _mm_fmadd_ps(_mm_set1_ps(-dx * hd[r].dmin), _mm_cvtepi32_ps(prod4[r][t]), s.accm4);
                    if constexpr (W == DType::Q5_K)
                        s.summs = std::fma(-dx * hd[r].dmin, float(reduce_i32(prod4[r][t])), s.summs);
                    continue;
                }
                const int32_t s1 = reduce_i32(v8);
                const int32_t s2 = W == DType::Q6_K ? 0 : reduce_i32(prod4[r][t]);
                if (f == KqForm::kTiled) {
                    float rr = float(s1) * hd[r].d;
                    if constexpr (W != DType::Q6_K) rr = std::fma(-hd[r].dmin, float(s2), rr);
                    s.acc = std::fma(rr, dx, s.acc);
                } else {
                    s.acc = std::fma(float(s1), hd[r].d * dx, s.acc);
                    s.accm = std::fma(float(s2), hd[r].dmin * dx, s.accm);
                }
            }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < B; ++t) {
            const Acc& s = st[r][t];
            float v;
            if (f == KqForm::kVecDot) {
                v = hsum8(s.acc8);
                if constexpr (W == DType::Q4_K) {
                    __m128 m = _mm_add_ps(s.accm4, _mm_movehl_ps(s.accm4, s.accm4));
                    m = _mm_add_ss(m, _mm_movehdup_ps(m));
                    v += _mm_cvtss_f32(m);
                }
                if constexpr (W == DType::Q5_K) v += s.summs;
            } else {
                v = f == KqForm::kTiled ? s.acc : s.acc - s.accm;
            }
            y[t * ldy + r] = v;
        }
}

template <DType W, int B>
void rows_b(KqForm f, int64_t n, const uint8_t* w, size_t rb, const BlockQ8_K* x, float* y, int64_t ldy, int64_t r0,
            int64_t r1) {
    constexpr int R = B <= 2 ? 4 : 2;  // R·B int32 accumulators plus B activation registers of 16
    const int64_t nb = n / 256;
    int64_t r = r0;
    for (; r + R <= r1; r += R) rows_pass<W, R, B>(f, nb, w + size_t(r) * rb, rb, x, y + r, ldy);
    for (; r < r1; ++r) rows_pass<W, 1, B>(f, nb, w + size_t(r) * rb, rb, x, y + r, ldy);
}

template <DType W>
void kq_rows(DType, KqForm f, int64_t n, const uint8_t* w, size_t rb, const BlockQ8_K* x, int64_t n_tok, float* y,
             int64_t ldy, int64_t r0, int64_t r1) {
    for (int64_t t = 0; t < n_tok; t += kKqTokPass) {
        const BlockQ8_K* xt = x + t * (n / 256);
        float* yt = y + t * ldy;
        switch (n_tok - t) {
            case 1: rows_b<W, 1>(f, n, w, rb, xt, yt, ldy, r0, r1); break;
            case 2: rows_b<W, 2>(f, n, w, rb, xt, yt, ldy, r0, r1); break;
            case 3: rows_b<W, 3>(f, n, w, rb, xt, yt, ldy, r0, r1); break;
            default: rows_b<W, 4>(f, n, w, rb, xt, yt, ldy, r0, r1); break;
        }
    }
}

template <DType W>
float vec_dot(int64_t n, const void* w, const void* x) {
    float y;
    rows_pass<W, 1, 1>(KqForm::kVecDot, n / 256, static_cast<const uint8_t*>(w), 0, static_cast<const BlockQ8_K*>(x), &y, 1);
    return y;
}

}  // namespace

KqRowsFn avx2_kq_rows(DType wt) {
    switch (wt) {
        case DType::Q4_K: return kq_rows<DType::Q4_K>;
        case DType::Q5_K: return kq_rows<DType::Q5_K>;
        case DType::Q6_K: return kq_rows<DType::Q6_K>;
        default: return nullptr;
    }
}

VecDotFn avx2_kq_vec_dot(DType wt) {
    switch (wt) {
        case DType::Q4_K: return vec_dot<DType::Q4_K>;
        case DType::Q5_K: return vec_dot<DType::Q5_K>;
        case DType::Q6_K: return vec_dot<DType::Q6_K>;
        default: return nullptr;
    }
}

}  // namespace strata::cpu

// AVX-512 (BW) K-quant kernels of the 8-bit mode (kquant.h): R weight rows x B tokens per
// pass, each 64-value chunk of a super-block unpacked once into 64 unsigned codes and
// multiplied with every token's 64 activation bytes (vpmaddubsw), the 16-bit pair sums
// scaled by the chunk's two group scales (vpmaddwd) into 16 int32 lanes. Lane i holds bytes
// 4i..4i+3 of the chunk, so lanes i and i+8 added are ggml vec_dot's lane i; the other
// forms only need lane sums. The float operations after the integers are the scalar
// definition's (kquant.cpp), in its order, so every form equals it bit for bit.
// GCC 12's AVX-512 intrinsics trip -W(maybe-)uninitialized inside immintrin.h; the pragmas
// must precede the include.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
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

// Per row and super-block: scales as int16 ([sc0..7 | m0..7] for Q4_K/Q5_K, sc0..15 for
// Q6_K), the f16 scale and minimum as f32.
struct Head {
    __m256i msc;
    float d, dmin;
};

template <DType W>
inline Head head(const uint8_t* b) {
    Head h;
    if constexpr (W == DType::Q6_K) {
        h.msc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)));
        h.d = h2f(uint16_t(b[208] | b[209] << 8)), h.dmin = 0;
    } else {
        // ggml's 12-byte scale unpacking: bytes 0-7 the scales, 8-15 the minimums.
        uint32_t u[4];
        std::memcpy(u, b + 4, 12);
        u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
        const uint32_t aux = u[1] & 0x3f3f3f3f;
        u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
        u[2] = aux;
        u[0] &= 0x3f3f3f3f;
        h.msc = _mm256_cvtepu8_epi16(_mm_set_epi32(int(u[3]), int(u[2]), int(u[1]), int(u[0])));
        h.d = h2f(uint16_t(b[0] | b[1] << 8)), h.dmin = h2f(uint16_t(b[2] | b[3] << 8));
    }
    return h;
}

// The 64 codes of chunk j (values 64j..64j+63) as unsigned bytes in value order.
template <DType W>
inline __m512i chunk_codes(const uint8_t* b, int j) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    if constexpr (W == DType::Q6_K) {
        const int h = j / 2, odd = j % 2;
        __m512i lo = _mm512_loadu_si512(b + 64 * h);  // ql: groups 4h+{0,1} low, 4h+{2,3} high nibbles
        if (odd) lo = _mm512_srli_epi16(lo, 4);
        lo = _mm512_and_si512(lo, m4);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h)));
        const __m512i sh = _mm512_set_epi64(4 * odd + 2, 4 * odd + 2, 4 * odd + 2, 4 * odd + 2, 4 * odd, 4 * odd, 4 * odd, 4 * odd);
        const __m512i hi = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, sh), _mm512_set1_epi8(3)), 4);
        return _mm512_or_si512(lo, hi);
    } else {
        constexpr size_t kQs = W == DType::Q4_K ? 16 : 48;
        const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + kQs + 32 * j)));
        const __m512i nib = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
        __m512i c = _mm512_and_si512(_mm512_srlv_epi64(q, nib), m4);
        if constexpr (W == DType::Q5_K) {
            const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16)));
            const __m512i sh = _mm512_set_epi64(2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j, 2 * j, 2 * j, 2 * j);
            c = _mm512_or_si512(c, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(qh, sh), _mm512_set1_epi8(1)), 4));
        }
        return c;
    }
}

// Chunk j's group scales per int16 lane: Q4_K/Q5_K lanes 0-15 sc[2j], 16-31 sc[2j+1];
// Q6_K lanes 8k..8k+7 sc[4j+k].
template <DType W>
struct ScaleIdx {
    alignas(64) int16_t v[4][32];
    constexpr ScaleIdx() : v() {
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 32; ++l) v[j][l] = int16_t(W == DType::Q6_K ? 4 * j + l / 8 : 2 * j + l / 16);
    }
};
template <DType W>
constexpr ScaleIdx<W> kScaleIdx{};

template <DType W>
inline __m512i chunk_scales(__m256i msc, int j) {
    return _mm512_permutexvar_epi16(_mm512_load_si512(kScaleIdx<W>.v[j]), _mm512_castsi256_si512(msc));
}

inline int32_t reduce_i32(__m128i s) {
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

// A super-block of kPackRows rows unpacked once for a sweep over many tokens: the chunk
// codes and scale vectors the pass would otherwise rebuild for every 4 tokens.
constexpr int kPackRows = 4;
struct alignas(64) PackedSb {
    __m512i codes[4][kPackRows], scales[4][kPackRows];  // [chunk][row]
    __m256i msc[kPackRows];
    float d[kPackRows], dmin[kPackRows];
};

template <DType W>
void pack_rows(const uint8_t* w, size_t rb, int64_t nb, PackedSb* pk) {
    for (int64_t i = 0; i < nb; ++i)
        for (int r = 0; r < kPackRows; ++r) {
            const uint8_t* b = w + size_t(r) * rb + size_t(i) * kBytes<W>;
            const Head h = head<W>(b);
            pk[i].msc[r] = h.msc, pk[i].d[r] = h.d, pk[i].dmin[r] = h.dmin;
            for (int j = 0; j < 4; ++j) pk[i].codes[j][r] = chunk_codes<W>(b, j), pk[i].scales[j][r] = chunk_scales<W>(h.msc, j);
        }
}

// Float state of one (row, token) dot (kquant.cpp's kq_dot_scalar, form by form).
struct Acc {
    __m256 acc8;
    __m128 accm4;
    float summs, acc, accm;
};

// R rows from `w` (or, when P, from their packed form pk) x B tokens: y[t * ldy + r].
template <DType W, int R, int B, bool P = false>
void rows_pass(KqForm f, int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_K* x, float* y, int64_t ldy,
               const PackedSb* pk = nullptr) {
    Acc st[R][B];
    for (auto& a : st)
        for (auto& s : a) s.acc8 = _mm256_setzero_ps(), s.accm4 = _mm_setzero_ps(), s.summs = s.acc = s.accm = 0;
    const bool gemm = f == KqForm::kGemm;
    for (int64_t i = 0; i < nb; ++i) {
        Head hd[R];
        for (int r = 0; r < R; ++r) {
            if constexpr (P) {
                hd[r].msc = pk[i].msc[r], hd[r].d = pk[i].d[r], hd[r].dmin = pk[i].dmin[r];
                continue;
            }
            const uint8_t* b = w + size_t(r) * rb + size_t(i) * kBytes<W>;
            _mm_prefetch(reinterpret_cast<const char*>(b + 8 * R * rb), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(b + 8 * R * rb + 64), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(b + 8 * R * rb + 128), _MM_HINT_T0);
            hd[r] = head<W>(b);
        }
        __m128i prod4[R][B] = {};  // Q4_K/Q5_K: min4
        if constexpr (W != DType::Q6_K)
            for (int t = 0; t < B; ++t) {
                const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t * nb + i].bsums));
                const __m128i bs32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
                for (int r = 0; r < R; ++r) prod4[r][t] = _mm_madd_epi16(_mm256_extracti128_si256(hd[r].msc, 1), bs32);
            }
        __m512i iacc[R][B];
        for (auto& a : iacc)
            for (auto& v : a) v = _mm512_setzero_si512();
        __m256i part[R][B][4];  // kGemm: each chunk's lanes folded to 8, reduced below
        for (int j = 0; j < 4; ++j) {
            __m512i xv[B];
            for (int t = 0; t < B; ++t) xv[t] = _mm512_loadu_si512(x[t * nb + i].qs + 64 * j);
            for (int r = 0; r < R; ++r) {
                const __m512i c = P ? pk[i].codes[j][r] : chunk_codes<W>(w + size_t(r) * rb + size_t(i) * kBytes<W>, j);
                const __m512i s = P ? pk[i].scales[j][r] : chunk_scales<W>(hd[r].msc, j);
                for (int t = 0; t < B; ++t) {
                    const __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(c, xv[t]), s);
                    if (gemm) part[r][t][j] = _mm256_add_epi32(_mm512_castsi512_si256(p), _mm512_extracti64x4_epi64(p, 1));
                    else iacc[r][t] = _mm512_add_epi32(iacc[r][t], p);
                }
            }
        }
        if (gemm) {  // q4_K 8x8 gemm: one fma per 64-value chunk, in chunk order (kquant.h)
            for (int r = 0; r < R; ++r)
                for (int t = 0; t < B; ++t) {
                    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(part[r][t][0], part[r][t][1]),
                                                        _mm256_hadd_epi32(part[r][t][2], part[r][t][3]));
                    alignas(16) float ic[4], m4[4];
                    _mm_store_ps(ic, _mm_cvtepi32_ps(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1))));
                    _mm_store_ps(m4, _mm_cvtepi32_ps(prod4[r][t]));
                    const float dx = x[t * nb + i].d, sd = hd[r].d * dx, sm = hd[r].dmin * dx;
                    Acc& a = st[r][t];
                    for (int j = 0; j < 4; ++j) a.acc = std::fma(ic[j], sd, a.acc), a.accm = std::fma(m4[j], sm, a.accm);
                }
            continue;
        }
        for (int r = 0; r < R; ++r)
            for (int t = 0; t < B; ++t) {
                Acc& s = st[r][t];
                const float dx = x[t * nb + i].d;
                __m256i v8 = _mm256_add_epi32(_mm512_castsi512_si256(iacc[r][t]), _mm512_extracti64x4_epi64(iacc[r][t], 1));
                if constexpr (W == DType::Q6_K) {  // the -32 offset, per lane as ggml subtracts it
                    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t * nb + i].bsums));
                    v8 = _mm256_sub_epi32(v8, _mm256_slli_epi32(_mm256_madd_epi16(bs, hd[r].msc), 5));
                }
                if (f == KqForm::kVecDot) {
                    s.acc8 = _mm256_fmadd_ps(_mm256_set1_ps(dx * hd[r].d), _mm256_cvtepi32_ps(v8), s.acc8);
                    if constexpr (W == DType::Q4_K)
                        s.accm4 = _mm_fmadd_ps(_mm_set1_ps(-dx * hd[r].dmin), _mm_cvtepi32_ps(prod4[r][t]), s.accm4);
                    if constexpr (W == DType::Q5_K)
                        s.summs = std::fma(-dx * hd[r].dmin, float(reduce_i32(prod4[r][t])), s.summs);
                } else {  // kTiled, kGemv: the lane sums
                    const __m128i q = _mm_add_epi32(_mm256_castsi256_si128(v8), _mm256_extracti128_si256(v8, 1));
                    const int32_t s1 = reduce_i32(q);
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
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < B; ++t) {
            const Acc& s = st[r][t];
            float v;
            switch (f) {
                case KqForm::kVecDot: {
                    v = hsum8(s.acc8);
                    if constexpr (W == DType::Q4_K) {
                        __m128 m = _mm_add_ps(s.accm4, _mm_movehl_ps(s.accm4, s.accm4));
                        m = _mm_add_ss(m, _mm_movehdup_ps(m));
                        v += _mm_cvtss_f32(m);
                    }
                    if constexpr (W == DType::Q5_K) v += s.summs;
                    break;
                }
                case KqForm::kTiled: v = s.acc; break;
                default: v = s.acc - s.accm; break;
            }
            y[t * ldy + r] = v;
        }
}

template <DType W, int B>
void rows_b(KqForm f, int64_t n, const uint8_t* w, size_t rb, const BlockQ8_K* x, float* y, int64_t ldy, int64_t r0,
            int64_t r1) {
    constexpr int R = 4;  // 8 rows at one token measured slower for Q6_K (50 -> 73 us, 640x2048)
    const int64_t nb = n / 256;
    int64_t r = r0;
    for (; r + R <= r1; r += R) rows_pass<W, R, B>(f, nb, w + size_t(r) * rb, rb, x, y + r, ldy);
    for (; r < r1; ++r) rows_pass<W, 1, B>(f, nb, w + size_t(r) * rb, rb, x, y + r, ldy);
}

template <DType W, bool P>
void tok_passes(KqForm f, int64_t nb, const uint8_t* w, size_t rb, const BlockQ8_K* x, int64_t n_tok, float* y,
                int64_t ldy, const PackedSb* pk) {
    for (int64_t t = 0; t < n_tok; t += kKqTokPass) {
        const BlockQ8_K* xt = x + t * nb;
        float* yt = y + t * ldy;
        switch (n_tok - t) {
            case 1: rows_pass<W, kPackRows, 1, P>(f, nb, w, rb, xt, yt, ldy, pk); break;
            case 2: rows_pass<W, kPackRows, 2, P>(f, nb, w, rb, xt, yt, ldy, pk); break;
            case 3: rows_pass<W, kPackRows, 3, P>(f, nb, w, rb, xt, yt, ldy, pk); break;
            default: rows_pass<W, kPackRows, 4, P>(f, nb, w, rb, xt, yt, ldy, pk); break;
        }
    }
}

template <DType W>
void kq_rows(DType, KqForm f, int64_t n, const uint8_t* w, size_t rb, const BlockQ8_K* x, int64_t n_tok, float* y,
             int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n / 256;
    if (n_tok > kKqTokPass) {  // a sweep: unpack each 4-row group once (~half the work at 4 tokens)
        auto* pk = reinterpret_cast<PackedSb*>(thread_scratch(kScratchKquant, size_t(nb) * sizeof(PackedSb)));
        int64_t r = r0;
        for (; r + kPackRows <= r1; r += kPackRows) {
            pack_rows<W>(w + size_t(r) * rb, rb, nb, pk);
            tok_passes<W, true>(f, nb, nullptr, rb, x, n_tok, y + r, ldy, pk);
        }
        for (; r < r1; ++r)
            for (int64_t t = 0; t < n_tok; ++t)
                rows_pass<W, 1, 1>(f, nb, w + size_t(r) * rb, rb, x + t * nb, y + t * ldy + r, ldy);
        return;
    }
    switch (n_tok) {
        case 1: return rows_b<W, 1>(f, n, w, rb, x, y, ldy, r0, r1);
        case 2: return rows_b<W, 2>(f, n, w, rb, x, y, ldy, r0, r1);
        case 3: return rows_b<W, 3>(f, n, w, rb, x, y, ldy, r0, r1);
        default: return rows_b<W, 4>(f, n, w, rb, x, y, ldy, r0, r1);
    }
}

template <DType W>
float vec_dot(int64_t n, const void* w, const void* x) {
    float y;
    rows_pass<W, 1, 1>(KqForm::kVecDot, n / 256, static_cast<const uint8_t*>(w), 0, static_cast<const BlockQ8_K*>(x), &y, 1);
    return y;
}


// ---- token-lane GEMM (AVX-512 VNNI): prompt batches in the kTiled and kGemm forms -------
// One zmm lane per token of a 16-token block: per 4-byte group of a super-block, every row's
// 4 codes are broadcast and vpdpbusd'ed with the 16 tokens' 4 bytes, a group's int32 sums
// scaled by its scale (vpmulld) into S1; the minimum term from the bsums likewise. The float
// steps are then kq_dot_scalar's, lane by lane.
constexpr int kLaneRows = 4;
struct alignas(64) LaneW {  // kLaneRows rows of one super-block
    uint8_t codes[kLaneRows][256];
    int32_t scm[kLaneRows][16];  // Q4_K/Q5_K: scales 0-7, minimums 8-15; Q6_K: the 16 scales
    float d[kLaneRows], dmin[kLaneRows];
};

template <DType W>
void lane_pack(const uint8_t* w, size_t rb, int rows, int64_t nb, LaneW* p) {
    for (int64_t i = 0; i < nb; ++i)
        for (int r = 0; r < kLaneRows; ++r) {
            if (r >= rows) {  // missing rows: zeros, results not stored
                std::memset(p[i].codes[r], 0, 256);
                std::memset(p[i].scm[r], 0, sizeof p[i].scm[r]);
                p[i].d[r] = p[i].dmin[r] = 0;
                continue;
            }
            const uint8_t* b = w + size_t(r) * rb + size_t(i) * kBytes<W>;
            const Head h = head<W>(b);
            for (int j = 0; j < 4; ++j) _mm512_store_si512(p[i].codes[r] + 64 * j, chunk_codes<W>(b, j));
            _mm512_store_si512(p[i].scm[r], _mm512_cvtepi16_epi32(h.msc));
            p[i].d[r] = h.d, p[i].dmin[r] = h.dmin;
        }
}

inline __m512i bcast32(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

// Rows of one LaneW group x one 16-token block, all super-blocks.
template <DType W, bool kGemm>
void lane_pass(const LaneW* wp, const KqActBlock* xb, int64_t nb, float* y, int64_t ldy, int rows, int ntok) {
    constexpr int R = kLaneRows;
    __m512 accf[R], accm[R];
    for (int r = 0; r < R; ++r) accf[r] = accm[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
        const LaneW& p = wp[i];
        const KqActBlock& a = xb[i];
        const __m512 dx = _mm512_load_ps(a.d);
        __m512i s1[R], s2[R];
        for (int r = 0; r < R; ++r) s1[r] = s2[r] = _mm512_setzero_si512();
        if constexpr (W == DType::Q6_K) {
            for (int s = 0; s < 16; ++s) {  // 16-value groups: 4 four-byte groups each
                // start from -32·bsum: sc·(raw - 32·bsum) is the group's offset dot
                const __m512i init = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(_mm512_load_si512(a.bs[s]), 5));
                __m512i acc[R];
                for (int r = 0; r < R; ++r) acc[r] = init;
                for (int k = 0; k < 4; ++k) {
                    const __m512i av = _mm512_load_si512(a.q[4 * s + k]);
                    for (int r = 0; r < R; ++r) acc[r] = _mm512_dpbusd_epi32(acc[r], bcast32(p.codes[r] + 16 * s + 4 * k), av);
                }
                for (int r = 0; r < R; ++r) s1[r] = _mm512_add_epi32(s1[r], _mm512_mullo_epi32(acc[r], _mm512_set1_epi32(p.scm[r][s])));
            }
            for (int r = 0; r < R; ++r) {
                const __m512 rr = _mm512_mul_ps(_mm512_cvtepi32_ps(s1[r]), _mm512_set1_ps(p.d[r]));
                accf[r] = _mm512_fmadd_ps(rr, dx, accf[r]);
            }
            continue;
        }
        for (int j = 0; j < 4; ++j) {  // 64-value chunks: groups 2j and 2j+1
            __m512i ic[R];
            for (int r = 0; r < R; ++r) ic[r] = _mm512_setzero_si512();
            for (int h = 0; h < 2; ++h) {
                const int s = 2 * j + h;
                __m512i acc[R];
                for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_si512();
                for (int k = 0; k < 8; ++k) {
                    const __m512i av = _mm512_load_si512(a.q[8 * s + k]);
                    for (int r = 0; r < R; ++r) acc[r] = _mm512_dpbusd_epi32(acc[r], bcast32(p.codes[r] + 32 * s + 4 * k), av);
                }
                for (int r = 0; r < R; ++r) ic[r] = _mm512_add_epi32(ic[r], _mm512_mullo_epi32(acc[r], _mm512_set1_epi32(p.scm[r][s])));
            }
            const __m512i bs_a = _mm512_add_epi32(_mm512_load_si512(a.bs[4 * j]), _mm512_load_si512(a.bs[4 * j + 1]));
            const __m512i bs_b = _mm512_add_epi32(_mm512_load_si512(a.bs[4 * j + 2]), _mm512_load_si512(a.bs[4 * j + 3]));
            for (int r = 0; r < R; ++r) {
                const __m512i m = _mm512_add_epi32(_mm512_mullo_epi32(bs_a, _mm512_set1_epi32(p.scm[r][8 + 2 * j])),
                                                   _mm512_mullo_epi32(bs_b, _mm512_set1_epi32(p.scm[r][9 + 2 * j])));
                if constexpr (kGemm) {  // q4_K 8x8 gemm: one fma per chunk (kquant.h)
                    accf[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ic[r]), _mm512_mul_ps(_mm512_set1_ps(p.d[r]), dx), accf[r]);
                    accm[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(_mm512_set1_ps(p.dmin[r]), dx), accm[r]);
                } else {
                    s1[r] = _mm512_add_epi32(s1[r], ic[r]);
                    s2[r] = _mm512_add_epi32(s2[r], m);
                }
            }
        }
        if constexpr (!kGemm)
            for (int r = 0; r < R; ++r) {  // the tiled kernel's epilogue: fnmadd(dmin, S2, S1·d), then ·dx
                __m512 rr = _mm512_mul_ps(_mm512_cvtepi32_ps(s1[r]), _mm512_set1_ps(p.d[r]));
                rr = _mm512_fnmadd_ps(_mm512_set1_ps(p.dmin[r]), _mm512_cvtepi32_ps(s2[r]), rr);
                accf[r] = _mm512_fmadd_ps(rr, dx, accf[r]);
            }
    }
    for (int r = 0; r < rows; ++r) {
        alignas(64) float v[16];
        _mm512_store_ps(v, kGemm ? _mm512_sub_ps(accf[r], accm[r]) : accf[r]);
        for (int t = 0; t < ntok; ++t) y[t * ldy + r] = v[t];
    }
}

template <DType W>
void kq_gemm(DType, KqForm f, int64_t n, const uint8_t* w, size_t rb, const KqActBlock* xp, int64_t n_tok, float* y,
             int64_t ldy, int64_t r0, int64_t r1) {
    const int64_t nb = n / 256, n_blk = (n_tok + 15) / 16;
    auto* wp = reinterpret_cast<LaneW*>(thread_scratch(kScratchKquant, size_t(nb) * sizeof(LaneW)));
    // Token blocks in chunks of 8 (their activations, 8·nb·5 KB, stay in L2) outermost;
    // each 4-row group is unpacked once per chunk and stays in L1.
    constexpr int64_t kBlkChunk = 8;
    for (int64_t c0 = 0; c0 < n_blk; c0 += kBlkChunk) {
        const int64_t c1 = n_blk < c0 + kBlkChunk ? n_blk : c0 + kBlkChunk;
        for (int64_t r = r0; r < r1; r += kLaneRows) {
            const int rows = int(r1 - r < kLaneRows ? r1 - r : kLaneRows);
            lane_pack<W>(w + size_t(r) * rb, rb, rows, nb, wp);
            for (int64_t b = c0; b < c1; ++b) {
                const int ntok = int(n_tok - 16 * b < 16 ? n_tok - 16 * b : 16);
                if (f == KqForm::kGemm) lane_pass<W, true>(wp, xp + b * nb, nb, y + 16 * b * ldy + r, ldy, rows, ntok);
                else lane_pass<W, false>(wp, xp + b * nb, nb, y + 16 * b * ldy + r, ldy, rows, ntok);
            }
        }
    }
}

}  // namespace

KqGemmFn avx512vnni_kq_gemm(DType wt) {
    switch (wt) {
        case DType::Q4_K: return kq_gemm<DType::Q4_K>;
        case DType::Q5_K: return kq_gemm<DType::Q5_K>;
        case DType::Q6_K: return kq_gemm<DType::Q6_K>;
        default: return nullptr;
    }
}

KqRowsFn avx512_kq_rows(DType wt) {
    switch (wt) {
        case DType::Q4_K: return kq_rows<DType::Q4_K>;
        case DType::Q5_K: return kq_rows<DType::Q5_K>;
        case DType::Q6_K: return kq_rows<DType::Q6_K>;
        default: return nullptr;
    }
}

VecDotFn avx512_kq_vec_dot(DType wt) {
    switch (wt) {
        case DType::Q4_K: return vec_dot<DType::Q4_K>;
        case DType::Q5_K: return vec_dot<DType::Q5_K>;
        case DType::Q6_K: return vec_dot<DType::Q6_K>;
        default: return nullptr;
    }
}

}  // namespace strata::cpu

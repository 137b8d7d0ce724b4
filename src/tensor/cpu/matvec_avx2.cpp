// AVX2 batch-1 matvec (decode) for the 32-value block formats, four rows per pass: the
// activation block is loaded once for four rows and the four rows' f16 scales go through
// one conversion. Each row keeps its own 8-lane accumulator with the AVX2 vec-dot's
// operations in the same order (vec_dot_avx2.cpp), so results are bit-identical to it;
// only instruction count drops. Integer dots of offset formats (Q4_0, Q5_0) are computed
// as unsigned codes times x minus offset·sum(x): the same integers as ggml's sign trick.
#include <immintrin.h>

#include <cstring>

#include "tensor/cpu/simd.h"
#include "tensor/cpu/x86_common-inl.h"

namespace strata::cpu {

namespace {

using x86::h2f;
using x86::hsum8;
using x86::load_u32;

inline __m256i dot_u8i8(__m256i a, __m256i b) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

enum class Fmt { kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0 };

template <Fmt F>
struct Traits {
    static constexpr bool kMin = F == Fmt::kQ4_1 || F == Fmt::kQ5_1;
    static constexpr bool kHigh = F == Fmt::kQ5_0 || F == Fmt::kQ5_1;
    static constexpr int kOffset = F == Fmt::kQ4_0 ? 8 : F == Fmt::kQ5_0 ? 16 : 0;
    static constexpr size_t kBytes = F == Fmt::kQ4_0 ? 18 : F == Fmt::kQ4_1 ? 20 : F == Fmt::kQ5_0 ? 22
                                   : F == Fmt::kQ5_1 ? 24 : 34;
    static constexpr size_t kQs = kBytes - (F == Fmt::kQ8_0 ? 32 : 16);
};

// 32 codes of one block in value order (unsigned, except Q8_0).
template <Fmt F>
inline __m256i codes(const uint8_t* b) {
    using T = Traits<F>;
    if constexpr (F == Fmt::kQ8_0) {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + T::kQs));
    } else {
        const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + T::kQs));
        __m256i v = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
        if constexpr (T::kHigh) {  // bit j of qh -> 0x10 in byte j
            const __m256i shuf = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101,
                                                    0x0202020202020202, 0x0303030303030303);
            __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32(int(load_u32(b + (T::kMin ? 4 : 2)))), shuf);
            const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
            hb = _mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit);
            v = _mm256_or_si256(v, _mm256_and_si256(hb, _mm256_set1_epi8(0x10)));
        }
        return v;
    }
}

constexpr size_t kPfGroups = 8;

// Per call and thread: the activations' f16 block scales as f32 and, for offset formats,
// offset·sum(x) per int32 lane, which every row of the call shares.
struct XPrep {
    int32_t* corr;     // [nb][8]
    float *dx, *sx;    // [nb] each
};

template <Fmt F>
void matvec(int64_t n, const uint8_t* w, size_t rb, const void* xv, float* y, int64_t r0, int64_t r1) {
    using T = Traits<F>;
    constexpr int R = 4;
    const int64_t nb = n / 32;
    const uint8_t* x = static_cast<const uint8_t*>(xv);
    constexpr size_t kXBytes = T::kMin ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
    constexpr int kXQs = T::kMin ? 4 : 2;
    uint8_t* mem = thread_scratch(kScratchMatvec, size_t(nb) * (32 + 8));
    XPrep xp;
    xp.corr = reinterpret_cast<int32_t*>(mem);
    xp.dx = reinterpret_cast<float*>(xp.corr + 8 * nb), xp.sx = xp.dx + nb;
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* xb = x + size_t(i) * kXBytes;
        uint16_t h[2];
        std::memcpy(h, xb, 4);
        xp.dx[i] = h2f(h[0]), xp.sx[i] = h2f(h[1]);
        if constexpr (T::kOffset != 0) {
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + kXQs));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(xp.corr + 8 * i),
                                dot_u8i8(_mm256_set1_epi8(T::kOffset), xq));
        }
    }
    // Software prefetch kPfGroups groups ahead, as in matvec_avx512.cpp (the hardware
    // prefetcher trains too late on four short row streams per group).
    const int64_t warm_end = r1 < r0 + R * int64_t(kPfGroups) ? r1 : r0 + R * int64_t(kPfGroups);
    for (const uint8_t *p = w + size_t(r0) * rb, *e = w + size_t(warm_end) * rb; p < e; p += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    int64_t r = r0;
    for (; r + R <= r1; r += R) {
        const uint8_t* row = w + size_t(r) * rb;
        __m256 acc[R];
        for (auto& a : acc) a = _mm256_setzero_ps();
        __m256 summs = _mm256_setzero_ps();
        const uint8_t* pf = row + kPfGroups * R * rb;
        for (int64_t i = 0; i < nb; ++i) {
            const uint8_t* b0 = row + size_t(i) * T::kBytes;
            for (size_t o = 0; o < R * T::kBytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(pf + o), _MM_HINT_T0);
            pf += R * T::kBytes;
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + size_t(i) * kXBytes + kXQs));
            // Scales of the four rows: lanes d0 m0 d1 m1 d2 m2 d3 m3 (m garbage without a min).
            __m128i dm = _mm_cvtsi32_si128(int(load_u32(b0)));
            dm = _mm_insert_epi32(dm, int(load_u32(b0 + rb)), 1);
            dm = _mm_insert_epi32(dm, int(load_u32(b0 + 2 * rb)), 2);
            dm = _mm_insert_epi32(dm, int(load_u32(b0 + 3 * rb)), 3);
            const __m256 dmf = _mm256_cvtph_ps(dm);
            const __m256 prod = _mm256_mul_ps(dmf, _mm256_broadcast_ss(xp.dx + i));
            if constexpr (T::kMin) summs = _mm256_fmadd_ps(dmf, _mm256_broadcast_ss(xp.sx + i), summs);
            for (int k = 0; k < R; ++k) {
                const __m256i q = codes<F>(b0 + size_t(k) * rb);
                __m256i ip;
                if constexpr (F == Fmt::kQ8_0) ip = dot_u8i8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
                else ip = dot_u8i8(q, xq);
                if constexpr (T::kOffset != 0)
                    ip = _mm256_sub_epi32(ip, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp.corr + 8 * i)));
                const __m256 d = _mm256_permutevar8x32_ps(prod, _mm256_set1_epi32(2 * k));
                acc[k] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(ip), acc[k]);
            }
        }
        alignas(32) float sm[8];
        _mm256_store_ps(sm, summs);
        for (int k = 0; k < R; ++k) y[r + k] = T::kMin ? hsum8(acc[k]) + sm[2 * k + 1] : hsum8(acc[k]);
    }
    if (r < r1) {
        const DType wt = F == Fmt::kQ4_0 ? DType::Q4_0 : F == Fmt::kQ4_1 ? DType::Q4_1 : F == Fmt::kQ5_0 ? DType::Q5_0
                       : F == Fmt::kQ5_1 ? DType::Q5_1 : DType::Q8_0;
        const VecDotFn dot = avx2_vec_dot(wt);
        for (; r < r1; ++r) y[r] = dot(n, w + size_t(r) * rb, xv);
    }
}

}  // namespace

MatvecFn avx2_matvec(DType wt) {
    switch (wt) {
        case DType::Q4_0: return matvec<Fmt::kQ4_0>;
        case DType::Q4_1: return matvec<Fmt::kQ4_1>;
        case DType::Q5_0: return matvec<Fmt::kQ5_0>;
        case DType::Q5_1: return matvec<Fmt::kQ5_1>;
        case DType::Q8_0: return matvec<Fmt::kQ8_0>;
        default: return nullptr;
    }
}

}  // namespace strata::cpu

// AVX-512 batch-1 matvec (decode) for the 32-value block formats, four rows per pass.
//
// Decode must reproduce llama.cpp's AVX2 vec-dot bit for bit per row (see kernels.h), so
// this keeps each row's 8-lane accumulator and only changes how many rows share a
// register: one 512-bit accumulator carries two rows, the activation block is loaded and
// shuffled once for four rows, and the four rows' f16 scales are gathered into one
// conversion. Lanes are a permutation of the AVX2 kernel's lanes, and each lane sees the
// same operations in the same order, so the per-row result is unchanged.
//
// Register layout for 4/5-bit formats (the 16 bytes of a block hold values j and j+16 in
// the low and high nibble): codes [row a lo | row b lo | row a hi | row b hi] against
// activations [x lo | x lo | x hi | x hi]; row a owns lanes 0-3 and 8-11. For Q8_0:
// [row a | row b] against [x | x]; row a owns lanes 0-7.
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() and trip
// -W(maybe-)uninitialized inside immintrin.h; the pragmas must precede the include.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstring>

#include "tensor/cpu/simd.h"
#include "tensor/cpu/x86_common-inl.h"

namespace strata::cpu {

namespace {

using x86::h2f;
using x86::load_u32;

enum class Fmt { kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0 };

template <Fmt F, bool kVnni>
struct Traits {
    static constexpr bool kSplit = F != Fmt::kQ8_0;       // nibble layout, see above
    static constexpr bool kMin = F == Fmt::kQ4_1 || F == Fmt::kQ5_1;
    static constexpr bool kHigh = F == Fmt::kQ5_0 || F == Fmt::kQ5_1;
    // 4-bit codes with VNNI: the high nibbles stay in place (value·16; no shift) and the
    // scale of those lanes is divided by 16. fma(s/16, 16·n, acc) == fma(s, n, acc)
    // exactly: both factors change by a power of two and 16·n < 2^24 converts exactly.
    // (maddubs would saturate on 240·127 pairs, so only with vpdpbusd.)
    static constexpr bool kX16 = kVnni && (F == Fmt::kQ4_0 || F == Fmt::kQ4_1);
    static constexpr int kOffset = F == Fmt::kQ4_0 ? 8 : F == Fmt::kQ5_0 ? 16 : (F == Fmt::kQ8_0 && kVnni) ? 128 : 0;
    static constexpr size_t kBytes = F == Fmt::kQ4_0 ? 18 : F == Fmt::kQ4_1 ? 20 : F == Fmt::kQ5_0 ? 22
                                   : F == Fmt::kQ5_1 ? 24 : 34;
    static constexpr size_t kQs = kBytes - (F == Fmt::kQ8_0 ? 32 : 16);  // offset of qs
};

template <bool kVnni>
inline __m512i dot_u8i8(__m512i a, __m512i b) {
    if constexpr (kVnni) return _mm512_dpbusd_epi32(_mm512_setzero_si512(), a, b);
    else return _mm512_madd_epi16(_mm512_maddubs_epi16(a, b), _mm512_set1_epi16(1));
}

// Codes of one block of rows a and b in the layout above.
template <Fmt F, bool kVnni>
inline __m512i pair_codes(const uint8_t* a, const uint8_t* b) {
    using T = Traits<F, kVnni>;
    if constexpr (F == Fmt::kQ8_0) {
        const __m256i wa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + T::kQs));
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(wa),
                                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + T::kQs)), 1);
        if constexpr (kVnni) w = _mm512_xor_si512(w, _mm512_set1_epi8(char(0x80)));  // q+128, unsigned
        return w;
    } else {
        const __m256i t = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + T::kQs))),
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + T::kQs)), 1);
        if constexpr (T::kX16) {
            const __m512i lo_hi = _mm512_inserti64x4(_mm512_set1_epi8(0x0F), _mm256_set1_epi8(char(0xF0)), 1);
            return _mm512_and_si512(_mm512_shuffle_i64x2(_mm512_castsi256_si512(t), _mm512_castsi256_si512(t), 0x44),
                                    lo_hi);
        }
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1);
        w = _mm512_and_si512(w, _mm512_set1_epi8(0x0F));
        if constexpr (T::kHigh) {
            const uint64_t ha = load_u32(a + (T::kMin ? 4 : 2)), hb = load_u32(b + (T::kMin ? 4 : 2));
            const uint64_t k = (ha & 0xFFFF) | (hb & 0xFFFF) << 16 | (ha >> 16) << 32 | (hb >> 16) << 48;
            w = _mm512_mask_add_epi8(w, __mmask64(k), w, _mm512_set1_epi8(0x10));
        }
        return w;
    }
}

// ggml's hsum_float_8 of one row's lanes: lo = its lanes 0-3, hi = lanes 4-7.
inline float hsum_parts(__m128 lo, __m128 hi) {
    __m128 r = _mm_add_ps(hi, lo);
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

// What every row of one call shares, computed once per call and thread: the activation
// block in register layout, the offset correction -offset·sum(x) per int32 lane (x16 in
// the high lanes when kX16), and the f16 block scales as f32.
struct XPrep {
    __m512i *xz, *nc;  // [nb] each
    float *dx, *sx;    // [nb] each
};

template <Fmt F, bool kVnni>
XPrep prepare_x(const uint8_t* x, int64_t nb) {
    using T = Traits<F, kVnni>;
    constexpr size_t kXBytes = T::kMin ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
    constexpr int kXQs = T::kMin ? 4 : 2;
    uint8_t* mem = thread_scratch(kScratchMatvec, size_t(nb) * (64 + 64 + 8));
    XPrep p;
    p.xz = reinterpret_cast<__m512i*>(mem), p.nc = p.xz + nb;
    p.dx = reinterpret_cast<float*>(p.nc + nb), p.sx = p.dx + nb;
    const __m512i xperm = _mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3);
    const __m512i off = T::kX16 ? _mm512_inserti64x4(_mm512_set1_epi8(char(T::kOffset)),
                                                     _mm256_set1_epi8(char(T::kOffset * 16)), 1)
                                : _mm512_set1_epi8(char(T::kOffset));
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* xb = x + size_t(i) * kXBytes;
        const __m256i x32 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + kXQs));
        const __m512i xz = T::kSplit ? _mm512_permutexvar_epi64(xperm, _mm512_castsi256_si512(x32))
                                     : _mm512_broadcast_i64x4(x32);
        _mm512_store_si512(p.xz + i, xz);
        if constexpr (T::kOffset != 0)
            _mm512_store_si512(p.nc + i, _mm512_sub_epi32(_mm512_setzero_si512(), dot_u8i8<kVnni>(off, xz)));
        uint16_t h[2];
        std::memcpy(h, xb, 4);
        p.dx[i] = h2f(h[0]), p.sx[i] = h2f(h[1]);
    }
    return p;
}

// Prefetch distance in 4-row groups: 8 (15-30 KB ahead) measured best for 1-thread cold
// reads on Zen 5 (2: 13 GB/s, 4: 16, 8: 20, 12: 20 on the 30 MB head; bench/kernels).
constexpr size_t kPfGroups = 8;

template <Fmt F, bool kVnni>
void matvec(int64_t n, const uint8_t* w, size_t rb, const void* xv, float* y, int64_t r0, int64_t r1) {
    using T = Traits<F, kVnni>;
    const int64_t nb = n / 32;
    const XPrep xp = prepare_x<F, kVnni>(static_cast<const uint8_t*>(xv), nb);
    // Row r's product d_w·d_x sits in lane 2r of the converted scales (d, m interleaved);
    // indices >= 16 pick the /16 copy for kX16's high lanes.
    const int hi = T::kX16 ? 16 : 0;
    const __m512i s01 = T::kSplit ? _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, hi, hi, hi, hi, hi + 2, hi + 2, hi + 2, hi + 2)
                                  : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i s23 = _mm512_add_epi32(s01, _mm512_set1_epi32(4));
    // Start the first groups' loads now: each call begins cold, and the loop below only
    // prefetches kPfGroups ahead of itself.
    const int64_t warm_end = r1 < r0 + 4 * int64_t(kPfGroups) ? r1 : r0 + 4 * int64_t(kPfGroups);
    for (const uint8_t *p = w + size_t(r0) * rb, *e = w + size_t(warm_end) * rb; p < e; p += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint8_t* row = w + size_t(r) * rb;
        __m512 acc01 = _mm512_setzero_ps(), acc23 = _mm512_setzero_ps();
        __m256 summs = _mm256_setzero_ps();
        // The hardware prefetcher sees four short streams per group (a row is only
        // 360-960 bytes) and trains too late; fetch group +kPfGroups ahead ourselves, the
        // 4·kBytes of it that one block step of the current group consumes.
        const uint8_t* pf = row + kPfGroups * 4 * rb;
        for (int64_t i = 0; i < nb; ++i) {
            const uint8_t* b0 = row + size_t(i) * T::kBytes;
            for (size_t o = 0; o < 4 * T::kBytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(pf + o), _MM_HINT_T0);
            pf += 4 * T::kBytes;
            const __m512i xz = _mm512_load_si512(xp.xz + i);
            __m128i dm = _mm_cvtsi32_si128(int(load_u32(b0)));
            dm = _mm_insert_epi32(dm, int(load_u32(b0 + rb)), 1);
            dm = _mm_insert_epi32(dm, int(load_u32(b0 + 2 * rb)), 2);
            dm = _mm_insert_epi32(dm, int(load_u32(b0 + 3 * rb)), 3);
            const __m256 dmf = _mm256_cvtph_ps(dm);  // d0 m0 d1 m1 d2 m2 d3 m3
            const __m256 prod = _mm256_mul_ps(dmf, _mm256_set1_ps(xp.dx[i]));
            if constexpr (T::kMin)  // m lanes: m·s + summs, the vec-dot's fused summs update
                summs = _mm256_fmadd_ps(dmf, _mm256_set1_ps(xp.sx[i]), summs);
            const __m512 p0 = _mm512_castps256_ps512(prod);
            const __m512 p1 = T::kX16 ? _mm512_castps256_ps512(_mm256_mul_ps(prod, _mm256_set1_ps(0.0625f))) : p0;
            const __m512i w01 = pair_codes<F, kVnni>(b0, b0 + rb), w23 = pair_codes<F, kVnni>(b0 + 2 * rb, b0 + 3 * rb);
            __m512i i01, i23;
            if constexpr (F == Fmt::kQ8_0 && !kVnni) {  // |q|·(±x)
                const __m512i z = _mm512_setzero_si512();
                i01 = dot_u8i8<false>(_mm512_abs_epi8(w01), _mm512_mask_sub_epi8(xz, _mm512_movepi8_mask(w01), z, xz));
                i23 = dot_u8i8<false>(_mm512_abs_epi8(w23), _mm512_mask_sub_epi8(xz, _mm512_movepi8_mask(w23), z, xz));
            } else if constexpr (T::kOffset != 0 && kVnni) {  // (q+off)·x - off·sum(x), exactly q·x
                i01 = _mm512_dpbusd_epi32(_mm512_load_si512(xp.nc + i), w01, xz);
                i23 = _mm512_dpbusd_epi32(_mm512_load_si512(xp.nc + i), w23, xz);
            } else if constexpr (T::kOffset != 0) {
                i01 = _mm512_add_epi32(dot_u8i8<kVnni>(w01, xz), _mm512_load_si512(xp.nc + i));
                i23 = _mm512_add_epi32(dot_u8i8<kVnni>(w23, xz), _mm512_load_si512(xp.nc + i));
            } else {
                i01 = dot_u8i8<kVnni>(w01, xz);
                i23 = dot_u8i8<kVnni>(w23, xz);
            }
            acc01 = _mm512_fmadd_ps(_mm512_permutex2var_ps(p0, s01, p1), _mm512_cvtepi32_ps(i01), acc01);
            acc23 = _mm512_fmadd_ps(_mm512_permutex2var_ps(p0, s23, p1), _mm512_cvtepi32_ps(i23), acc23);
        }
        alignas(32) float sm[8];
        _mm256_store_ps(sm, summs);
        // Lanes of row k (128-bit quarters q0 q1 q2 q3): split layout a = q0+q2, b = q1+q3;
        // Q8_0 layout a = q0+q1, b = q2+q3. (Immediates must be literal for -O0 builds.)
        const __m128 q[8] = {_mm512_extractf32x4_ps(acc01, 0), _mm512_extractf32x4_ps(acc01, 1),
                             _mm512_extractf32x4_ps(acc01, 2), _mm512_extractf32x4_ps(acc01, 3),
                             _mm512_extractf32x4_ps(acc23, 0), _mm512_extractf32x4_ps(acc23, 1),
                             _mm512_extractf32x4_ps(acc23, 2), _mm512_extractf32x4_ps(acc23, 3)};
        for (int k = 0; k < 4; ++k) {
            const int base = 4 * (k / 2), h = k & 1;
            float v = T::kSplit ? hsum_parts(q[base + h], q[base + 2 + h]) : hsum_parts(q[base + 2 * h], q[base + 2 * h + 1]);
            if constexpr (T::kMin) v += sm[2 * k + 1];
            y[r + k] = v;
        }
    }
    if (r < r1) {  // last rows one at a time, same arithmetic
        const DType wt = F == Fmt::kQ4_0 ? DType::Q4_0 : F == Fmt::kQ4_1 ? DType::Q4_1 : F == Fmt::kQ5_0 ? DType::Q5_0
                       : F == Fmt::kQ5_1 ? DType::Q5_1 : DType::Q8_0;
        const VecDotFn dot = avx2_vec_dot(wt);
        for (; r < r1; ++r) y[r] = dot(n, w + size_t(r) * rb, xv);
    }
}

template <bool kVnni>
MatvecFn pick(DType wt) {
    switch (wt) {
        case DType::Q4_0: return matvec<Fmt::kQ4_0, kVnni>;
        case DType::Q4_1: return matvec<Fmt::kQ4_1, kVnni>;
        case DType::Q5_0: return matvec<Fmt::kQ5_0, kVnni>;
        case DType::Q5_1: return matvec<Fmt::kQ5_1, kVnni>;
        case DType::Q8_0: return matvec<Fmt::kQ8_0, kVnni>;
        default: return nullptr;
    }
}

}  // namespace

MatvecFn avx512_matvec(DType wt, bool vnni) { return vnni ? pick<true>(wt) : pick<false>(wt); }

}  // namespace strata::cpu

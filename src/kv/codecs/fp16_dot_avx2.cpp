// AVX2/F16C bodies of fp16_dot.cpp: dot_f16_ggml_chunked (the 64 accumulator lanes as
// eight 8-lane registers, one fma per lane per chunk, exactly as ggml's 16-lane body) and
// the flash-attention pieces (8 lanes of the head dimension; lanes are independent).
#include <immintrin.h>

#include <cstdint>

namespace strata::kv {

void dot_f16_chunks_avx2(const uint16_t* a, const uint16_t* const* chunks, int64_t n_chunks, float acc[64]) {
    __m256 s[8];
    for (int r = 0; r < 8; ++r) s[r] = _mm256_loadu_ps(acc + 8 * r);
    for (int64_t c = 0; c < n_chunks; ++c) {
        const uint16_t* b = chunks[c];
        for (int r = 0; r < 8; ++r) {
            const __m256 va = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 64 * c + 8 * r)));
            const __m256 vb = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 8 * r)));
            s[r] = _mm256_fmadd_ps(va, vb, s[r]);
        }
    }
    for (int r = 0; r < 8; ++r) _mm256_storeu_ps(acc + 8 * r, s[r]);
}

namespace {
inline __m256 f16_round(__m256 x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT)); }
inline __m256 load_h(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
}  // namespace

// Bodies of the flash-attention pieces in fp16_dot.cpp (same arithmetic, 8 lanes of d).
void flash_accumulate_f16_avx2(float* acc, const uint16_t* const* v_rows, const float* rescale, const float* w,
                               int64_t steps, int64_t n) {
    for (int64_t d0 = 0; d0 < n; d0 += 64) {  // up to 8 registers of accumulators at a time
        const int nr = int((n - d0 < 64 ? n - d0 : 64) / 8);
        __m256 a[8];
        for (int r = 0; r < nr; ++r) a[r] = _mm256_loadu_ps(acc + d0 + 8 * r);
        for (int64_t j = 0; j < steps; ++j) {
            if (rescale[j] != 1.0f) {
                const __m256 m = _mm256_set1_ps(rescale[j]);
                for (int r = 0; r < nr; ++r) a[r] = f16_round(_mm256_mul_ps(a[r], m));
            }
            const __m256 vw = _mm256_set1_ps(w[j]);
            const uint16_t* v = v_rows[j] + d0;
            for (int r = 0; r < nr; ++r) a[r] = f16_round(_mm256_fmadd_ps(load_h(v + 8 * r), vw, a[r]));
        }
        for (int r = 0; r < nr; ++r) _mm256_storeu_ps(acc + d0 + 8 * r, a[r]);
    }
}

void flash_accumulate_f32_avx2(float* acc, const uint16_t* const* v_rows, const float* p, int64_t steps, int64_t n) {
    for (int64_t d0 = 0; d0 < n; d0 += 64) {
        const int nr = int((n - d0 < 64 ? n - d0 : 64) / 8);
        __m256 a[8];
        for (int r = 0; r < nr; ++r) a[r] = _mm256_loadu_ps(acc + d0 + 8 * r);
        for (int64_t t = 0; t < steps; ++t) {
            const __m256 pw = _mm256_set1_ps(p[t]);
            const uint16_t* v = v_rows[t] + d0;
            for (int r = 0; r < nr; ++r) a[r] = _mm256_fmadd_ps(load_h(v + 8 * r), pw, a[r]);
        }
        for (int r = 0; r < nr; ++r) _mm256_storeu_ps(acc + d0 + 8 * r, a[r]);
    }
}

void flash_scores_f32_avx2(const float* q, const float* kt, int64_t dk, float* kq) {
    __m256 a[8];
    for (auto& v : a) v = _mm256_setzero_ps();
    for (int64_t d = 0; d < dk; ++d) {
        const __m256 qd = _mm256_set1_ps(q[d]);
        for (int r = 0; r < 8; ++r) a[r] = _mm256_fmadd_ps(_mm256_loadu_ps(kt + d * 64 + 8 * r), qd, a[r]);
    }
    for (int r = 0; r < 8; ++r) _mm256_storeu_ps(kq + 8 * r, a[r]);
}

}  // namespace strata::kv

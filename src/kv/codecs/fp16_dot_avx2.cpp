// AVX2/F16C body of dot_f16_ggml_chunked (fp16_dot.cpp): the 64 accumulator lanes as
// eight 8-lane registers, one fma per lane per chunk, exactly as ggml's 16-lane body.
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

}  // namespace strata::kv

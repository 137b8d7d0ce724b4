// dot_f16_ggml_chunked (codecs.h): ggml's f16 dot over 64-value chunks that live in
// different KV pages, so the paged fp16 cache keeps llama.cpp's value-dot bits. Lanes are
// independent fma chains, so an 8-lane AVX2 body (fp16_dot_avx2.cpp) and this portable
// body give the same bits as ggml's 16-lane AVX-512 one.
#include <cmath>

#include "kv/codecs/codecs.h"
#include "tensor/cpu/kernels.h"
#include "tensor/dtype.h"

namespace strata::kv {

void dot_f16_chunks_avx2(const uint16_t* a, const uint16_t* const* chunks, int64_t n_chunks, float acc[64]);

namespace {
// _mm512_reduce_add_ps's order (ops/ggml_math.cpp).
float reduce16(const float* v) {
    float t3[8], t6[4];
    for (int i = 0; i < 8; ++i) t3[i] = v[8 + i] + v[i];
    for (int i = 0; i < 4; ++i) t6[i] = t3[4 + i] + t3[i];
    return (t6[0] + t6[2]) + (t6[1] + t6[3]);
}
}  // namespace

float dot_f16_ggml_chunked(const uint16_t* a, const uint16_t* const* chunks, int64_t n_chunks) {
    float acc[64] = {};  // [4 accumulators][16 lanes]
    if (cpu::active_isa() >= cpu::Isa::kAvx2) {
        dot_f16_chunks_avx2(a, chunks, n_chunks, acc);
    } else {
        for (int64_t c = 0; c < n_chunks; ++c)
            for (int l = 0; l < 64; ++l)
                acc[l] = std::fma(fp16_to_fp32(a[64 * c + l]), fp16_to_fp32(chunks[c][l]), acc[l]);
    }
    for (int l = 0; l < 16; ++l) {
        acc[l] += acc[32 + l];
        acc[16 + l] += acc[48 + l];
    }
    for (int l = 0; l < 16; ++l) acc[l] += acc[16 + l];
    return float(double(reduce16(acc)));
}

}  // namespace strata::kv

// dot_f16_ggml_chunked (codecs.h): ggml's f16 dot over 64-value chunks that live in
// different KV pages, so the paged fp16 cache keeps llama.cpp's value-dot bits. Lanes are
// independent fma chains, so an 8-lane AVX2 body (fp16_dot_avx2.cpp) and this portable
// body give the same bits as ggml's 16-lane AVX-512 one.
#include <algorithm>
#include <cmath>

#include "kv/codecs/codecs.h"
#include "kv/lane_dot.h"
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

void flash_accumulate_f16_avx2(float* acc, const uint16_t* const* v_rows, const float* rescale, const float* w,
                               int64_t steps, int64_t n);
void flash_accumulate_f32_avx2(float* acc, const uint16_t* const* v_rows, const float* p, int64_t steps, int64_t n);
void flash_scores_f32_avx2(const float* q, const float* kt, int64_t dk, float* kq);

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

float lane_dot_f16_avx2(const float* a, const uint16_t* h, int64_t n);

float lane_dot_f16(const float* a, const uint16_t* h, int64_t n) {
    if (cpu::active_isa() >= cpu::Isa::kAvx2) return lane_dot_f16_avx2(a, h, n);
    const float* f16 = fp16_table();
    return lane_dot(a, n, [h, f16](int64_t i) { return f16[h[i]]; });
}

void lane_dot_f16_multi_avx2(const float* const* a, int m, const uint16_t* h, int64_t n, float* out);

void lane_dot_f16_multi(const float* const* a, int m, const uint16_t* h, int64_t n, float* out) {
    if (cpu::active_isa() >= cpu::Isa::kAvx2) {
        for (int k0 = 0; k0 < m; k0 += 8) lane_dot_f16_multi_avx2(a + k0, std::min(8, m - k0), h, n, out + k0);
        return;
    }
    for (int k = 0; k < m; ++k) out[k] = lane_dot_f16(a[k], h, n);
}

float dot_f16_sgemm_chunked(const uint16_t* a, const uint16_t* const* chunks, int64_t n_chunks) {
    float acc[16] = {};
    for (int64_t c = 0; c < n_chunks; ++c)
        for (int r = 0; r < 4; ++r)
            for (int l = 0; l < 16; ++l)
                acc[l] = std::fma(fp16_to_fp32(a[64 * c + 16 * r + l]), fp16_to_fp32(chunks[c][16 * r + l]), acc[l]);
    return reduce16(acc);
}

namespace {
inline float f16_round(float x) { return fp16_to_fp32(fp32_to_fp16(x)); }
}  // namespace

void flash_accumulate_f16(float* acc, const uint16_t* const* v_rows, const float* rescale, const float* w,
                          int64_t steps, int64_t n) {
    if (cpu::active_isa() >= cpu::Isa::kAvx2 && n % 8 == 0)
        return flash_accumulate_f16_avx2(acc, v_rows, rescale, w, steps, n);
    for (int64_t j = 0; j < steps; ++j) {
        if (rescale[j] != 1.0f)
            for (int64_t d = 0; d < n; ++d) acc[d] = f16_round(acc[d] * rescale[j]);
        for (int64_t d = 0; d < n; ++d) acc[d] = f16_round(std::fma(fp16_to_fp32(v_rows[j][d]), w[j], acc[d]));
    }
}

void flash_accumulate_f32(float* acc, const uint16_t* const* v_rows, const float* p, int64_t steps, int64_t n) {
    if (cpu::active_isa() >= cpu::Isa::kAvx2 && n % 8 == 0) return flash_accumulate_f32_avx2(acc, v_rows, p, steps, n);
    for (int64_t t = 0; t < steps; ++t)
        for (int64_t d = 0; d < n; ++d) acc[d] = std::fma(fp16_to_fp32(v_rows[t][d]), p[t], acc[d]);
}

void flash_scores_f32(const float* q, const float* kt, int64_t dk, float* kq) {
    if (cpu::active_isa() >= cpu::Isa::kAvx2) return flash_scores_f32_avx2(q, kt, dk, kq);
    for (int t = 0; t < 64; ++t) kq[t] = 0.f;
    for (int64_t d = 0; d < dk; ++d)
        for (int t = 0; t < 64; ++t) kq[t] = std::fma(kt[d * 64 + t], q[d], kq[t]);
}

}  // namespace strata::kv

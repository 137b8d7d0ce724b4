// Scalar tile-format attention kernels and the run-time choice of kernel set
// (tile_kernels.h). The scalar bodies are the reference: plain loops over unpacked codes
// and software FP16 conversion, libm exp, double sums.
#include "kv/tile_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kv/varn.h"
#include "kv/varn_stats-inl.h"
#include "tensor/dtype.h"

namespace strata::kv {

namespace {

void scalar_scores(const TileLayout& L, const uint8_t* rec, const float* q, int g, float* scores, size_t ld,
                   float* scratch) {
    tile_scores(L, rec, q, g, scores, ld, reinterpret_cast<uint8_t*>(scratch + size_t(g) * size_t(L.D + 1)), scratch);
}

void scalar_values(const TileLayout& L, const uint8_t* rec, const float* p, size_t ld, int g, float* out,
                   float* scratch) {
    double* partial = reinterpret_cast<double*>(scratch);  // g*(D+1) doubles
    tile_values(L, rec, p, ld, g, out, reinterpret_cast<uint8_t*>(partial + size_t(g) * size_t(L.D + 1)), partial);
}

void scalar_fp_scores(const uint16_t* rows, size_t stride, int n, int D, const float* q, int g, float* scores,
                      size_t ld) {
    for (int i = 0; i < n; ++i) {
        const uint16_t* r = rows + size_t(i) * stride;
        for (int j = 0; j < g; ++j) {
            float s = 0;
            for (int d = 0; d < D; ++d) s += q[size_t(j * D + d)] * fp16_to_fp32(r[d]);
            scores[size_t(j) * ld + size_t(i)] = s;
        }
    }
}

void scalar_fp_values(const uint16_t* rows, size_t stride, int n, int D, const float* p, size_t ld, int g,
                      float* out) {
    for (int i = 0; i < n; ++i) {
        const uint16_t* r = rows + size_t(i) * stride;
        for (int j = 0; j < g; ++j) {
            const float w = p[size_t(j) * ld + size_t(i)];
            for (int d = 0; d < D; ++d) out[size_t(j * D + d)] += w * fp16_to_fp32(r[d]);
        }
    }
}

float scalar_max(const float* x, int n) { return *std::max_element(x, x + n); }

double scalar_exp_sum(float* x, int n, float m) {
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += x[i] = std::exp(x[i] - m);
    return sum;
}

const TileKernels kScalar{"scalar", scalar_scores, scalar_values, scalar_fp_scores, scalar_fp_values, scalar_max,
                          scalar_exp_sum, col_sd, row_sd};

}  // namespace

size_t tile_scratch_floats(const TileLayout& L, int g) {
    // max of: SIMD a/w [g][D or G] + beta/gamma [g]; scalar [g][D+1] doubles + codes.
    return size_t(g) * size_t(2 * L.D + L.G + 4) + size_t(std::max(L.D, L.G));
}

const TileKernels& tile_kernels(cpu::Isa isa) {
    isa = std::min(isa, cpu::detected_isa());
#if defined(__x86_64__)
    if (isa >= cpu::Isa::kAvx512) return tile_kernels_avx512();
    if (isa >= cpu::Isa::kAvx2) return tile_kernels_avx2();
#endif
    return kScalar;
}

const TileKernels& tile_kernels_for(const TileLayout& L) {
    if (L.D % 64 || L.G % 64) return kScalar;
    return tile_kernels(cpu::active_isa());
}

}  // namespace strata::kv

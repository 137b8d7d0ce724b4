// Activation quantizers routed by the active ISA.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensor/cpu/simd.h"

namespace strata::cpu {

void avx2_quantize_row_q8(const float* x, void* dst, int64_t n, bool with_sum);

namespace {
// Scalar twin of avx2_quantize_row_q8 (same scale and rounding, so every ISA level
// produces identical activation blocks).
void scalar_quantize_row_q8(const float* x, void* dst, int64_t n, bool with_sum) {
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.f;
        const float id = amax != 0.f ? 127.f / amax : 0.f;
        int8_t q[32];
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            q[j] = int8_t(std::nearbyint(x[j] * id));  // default FP mode: ties to even
            sum += q[j];
        }
        if (with_sum) {
            auto* b = static_cast<BlockQ8_1*>(dst) + i;
            std::memcpy(b->qs, q, 32);
            b->d = fp32_to_fp16(d);
            b->s = fp32_to_fp16(float(sum) * d);
        } else {
            auto* b = static_cast<BlockQ8_0*>(dst) + i;
            std::memcpy(b->qs, q, 32);
            b->d = fp32_to_fp16(d);
        }
    }
}
}  // namespace

void quantize_row_q8_0_fast(const float* x, void* dst, int64_t n) {
    if (active_isa() >= Isa::kAvx2) return avx2_quantize_row_q8(x, dst, n, false);
    scalar_quantize_row_q8(x, dst, n, false);
}

void quantize_row_q8_1_fast(const float* x, void* dst, int64_t n) {
    if (active_isa() >= Isa::kAvx2) return avx2_quantize_row_q8(x, dst, n, true);
    scalar_quantize_row_q8(x, dst, n, true);
}

}  // namespace strata::cpu

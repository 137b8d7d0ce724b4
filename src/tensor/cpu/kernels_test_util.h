// Test helpers shared by the tensor/cpu tests: random weight rows of any type with sane
// scales, and the f32 reference dot they are all checked against.
#pragma once

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "tensor/dtype.h"

namespace strata::cpu::test_util {

// Random weight row of type t: quantize random floats with the reference quantizers where
// we have them; otherwise random bytes with sane f16 scales.
inline std::vector<uint8_t> random_row(DType t, int64_t n, std::mt19937& rng) {
    const auto info = dtype_info_checked(t);
    std::vector<uint8_t> row(dtype_row_bytes(t, uint64_t(n)));
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : row) b = uint8_t(byte(rng));
    // Fix up scale fields so they are finite and moderate.
    std::uniform_real_distribution<float> sc(-0.05f, 0.05f);
    for (int64_t b = 0; b < n / info.block_size; ++b) {
        uint8_t* blk = row.data() + size_t(b) * info.block_bytes;
        auto put = [&](size_t off) {
            const uint16_t h = fp32_to_fp16(sc(rng));
            std::memcpy(blk + off, &h, 2);
        };
        switch (t) {
            case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: case DType::IQ4_NL: put(0); break;
            case DType::Q4_1: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K: put(0); put(2); break;
            case DType::Q6_K: put(208); break;
            default: break;
        }
    }
    if (t == DType::F32) {
        std::normal_distribution<float> nd(0, 1);
        auto* f = reinterpret_cast<float*>(row.data());
        for (int64_t i = 0; i < n; ++i) f[i] = nd(rng);
    }
    if (t == DType::F16 || t == DType::BF16) {
        std::normal_distribution<float> nd(0, 1);
        auto* h = reinterpret_cast<uint16_t*>(row.data());
        for (int64_t i = 0; i < n; ++i) h[i] = t == DType::F16 ? fp32_to_fp16(nd(rng)) : fp32_to_bf16(nd(rng));
    }
    return row;
}

// Reference: dequantized weight row · f32 activations in double; *mag gets sum |w·x|, the
// scale that float rounding and 8-bit activation error are proportional to.
inline double ref_dot(DType t, const uint8_t* w, const float* x, int64_t n, double* mag) {
    std::vector<float> wf(static_cast<size_t>(n));
    if (!dequantize_row(t, w, wf.data(), n)) return NAN;
    double ref = 0, m = 0;
    for (int64_t i = 0; i < n; ++i) {
        ref += double(wf[size_t(i)]) * x[i];
        m += std::fabs(double(wf[size_t(i)]) * x[i]);
    }
    *mag = m;
    return ref;
}

}  // namespace strata::cpu::test_util

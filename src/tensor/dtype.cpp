// Type table, half-float conversion and scalar reference (de)quantizers.
#include "tensor/dtype.h"

#include <algorithm>
#include <cmath>

namespace strata {

std::optional<DTypeInfo> dtype_info(uint32_t id) {
    switch (DType(id)) {
        case DType::F32: return DTypeInfo{"F32", 1, 4, true};
        case DType::F16: return DTypeInfo{"F16", 1, 2, true};
        case DType::BF16: return DTypeInfo{"BF16", 1, 2, true};
        case DType::Q4_0: return DTypeInfo{"Q4_0", 32, 18, true};
        case DType::Q4_1: return DTypeInfo{"Q4_1", 32, 20, true};
        case DType::Q5_0: return DTypeInfo{"Q5_0", 32, 22, true};
        case DType::Q5_1: return DTypeInfo{"Q5_1", 32, 24, true};
        case DType::Q8_0: return DTypeInfo{"Q8_0", 32, 34, true};
        case DType::Q8_1: return DTypeInfo{"Q8_1", 32, 36, true};
        case DType::Q2_K: return DTypeInfo{"Q2_K", 256, 84, false};
        case DType::Q3_K: return DTypeInfo{"Q3_K", 256, 110, false};
        case DType::Q4_K: return DTypeInfo{"Q4_K", 256, 144, true};
        case DType::Q5_K: return DTypeInfo{"Q5_K", 256, 176, true};
        case DType::Q6_K: return DTypeInfo{"Q6_K", 256, 210, true};
        case DType::Q8_K: return DTypeInfo{"Q8_K", 256, 292, true};
        case DType::IQ4_NL: return DTypeInfo{"IQ4_NL", 32, 18, true};
        case DType::I8: return DTypeInfo{"I8", 1, 1, false};
        case DType::I16: return DTypeInfo{"I16", 1, 2, false};
        case DType::I32: return DTypeInfo{"I32", 1, 4, false};
        case DType::I64: return DTypeInfo{"I64", 1, 8, false};
        case DType::F64: return DTypeInfo{"F64", 1, 8, false};
    }
    // Known-but-unimplemented ids get a name so errors are readable.
    switch (id) {
        case 16: return DTypeInfo{"IQ2_XXS", 256, 66, false};
        case 17: return DTypeInfo{"IQ2_XS", 256, 74, false};
        case 18: return DTypeInfo{"IQ3_XXS", 256, 98, false};
        case 19: return DTypeInfo{"IQ1_S", 256, 50, false};
        case 21: return DTypeInfo{"IQ3_S", 256, 110, false};
        case 22: return DTypeInfo{"IQ2_S", 256, 82, false};
        case 23: return DTypeInfo{"IQ4_XS", 256, 136, false};
        case 29: return DTypeInfo{"IQ1_M", 256, 56, false};
        case 34: return DTypeInfo{"TQ1_0", 256, 54, false};
        case 35: return DTypeInfo{"TQ2_0", 256, 66, false};
        case 39: return DTypeInfo{"MXFP4", 32, 17, false};
        default: return std::nullopt;
    }
}

std::string_view dtype_name(DType t) {
    auto i = dtype_info(uint32_t(t));
    return i ? i->name : std::string_view("?");
}

float fp16_to_fp32(uint16_t h) {
    const uint32_t s = uint32_t(h & 0x8000) << 16;
    const uint32_t e = (h >> 10) & 0x1F;
    const uint32_t m = h & 0x3FF;
    uint32_t u;
    if (e == 0) {
        if (m == 0) {
            u = s;
        } else {  // subnormal: normalise
            float f = std::ldexp(float(m), -24);
            std::memcpy(&u, &f, 4);
            u |= s;
        }
    } else if (e == 31) {
        u = s | 0x7F800000u | (m << 13);
    } else {
        u = s | ((e + 112) << 23) | (m << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

uint16_t fp32_to_fp16(float f) {
    // Same algorithm as ggml's scalar fallback (round to nearest even via float arithmetic).
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (std::fabs(f) * scale_to_inf) * scale_to_zero;
    uint32_t w;
    std::memcpy(&w, &f, 4);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    uint32_t bu = (bias >> 1) + 0x07800000u;
    float bf;
    std::memcpy(&bf, &bu, 4);
    base = bf + base;
    uint32_t bits;
    std::memcpy(&bits, &base, 4);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return uint16_t((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

uint16_t fp32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return uint16_t((u >> 16) | 64);
    return uint16_t((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

namespace {

constexpr int8_t kIq4nlTable[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                    1,    13,   25,  38,  53,  69,  89,  113};

inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

}  // namespace

bool dequantize_row(DType t, const void* src, float* y, int64_t n) {
    switch (t) {
        case DType::F32:
            std::memcpy(y, src, size_t(n) * 4);
            return true;
        case DType::F16: {
            auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(s[i]);
            return true;
        }
        case DType::BF16: {
            auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(s[i]);
            return true;
        }
        case DType::Q4_0: {
            auto* b = static_cast<const BlockQ4_0*>(src);
            for (int64_t i = 0; i < n / 32; ++i, y += 32) {
                const float d = fp16_to_fp32(b[i].d);
                for (int j = 0; j < 16; ++j) {
                    y[j] = float((b[i].qs[j] & 0xF) - 8) * d;
                    y[j + 16] = float((b[i].qs[j] >> 4) - 8) * d;
                }
            }
            return true;
        }
        case DType::Q4_1: {
            auto* b = static_cast<const BlockQ4_1*>(src);
            for (int64_t i = 0; i < n / 32; ++i, y += 32) {
                const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
                for (int j = 0; j < 16; ++j) {
                    y[j] = float(b[i].qs[j] & 0xF) * d + m;
                    y[j + 16] = float(b[i].qs[j] >> 4) * d + m;
                }
            }
            return true;
        }
        case DType::Q5_0: {
            auto* b = static_cast<const BlockQ5_0*>(src);
            for (int64_t i = 0; i < n / 32; ++i, y += 32) {
                const float d = fp16_to_fp32(b[i].d);
                uint32_t h;
                std::memcpy(&h, b[i].qh, 4);
                for (int j = 0; j < 16; ++j) {
                    const int lo = (b[i].qs[j] & 0xF) | (((h >> j) & 1) << 4);
                    const int hi = (b[i].qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4);
                    y[j] = float(lo - 16) * d;
                    y[j + 16] = float(hi - 16) * d;
                }
            }
            return true;
        }
        case DType::Q5_1: {
            auto* b = static_cast<const BlockQ5_1*>(src);
            for (int64_t i = 0; i < n / 32; ++i, y += 32) {
                const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
                uint32_t h;
                std::memcpy(&h, b[i].qh, 4);
                for (int j = 0; j < 16; ++j) {
                    const int lo = (b[i].qs[j] & 0xF) | (((h >> j) & 1) << 4);
                    const int hi = (b[i].qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4);
                    y[j] = float(lo) * d + m;
                    y[j + 16] = float(hi) * d + m;
                }
            }
            return true;
        }
        case DType::Q8_0: {
            auto* b = static_cast<const BlockQ8_0*>(src);
            for (int64_t i = 0; i < n / 32; ++i, y += 32) {
                const float d = fp16_to_fp32(b[i].d);
                for (int j = 0; j < 32; ++j) y[j] = float(b[i].qs[j]) * d;
            }
            return true;
        }
        case DType::Q8_1: {
            auto* b = static_cast<const BlockQ8_1*>(src);
            for (int64_t i = 0; i < n / 32; ++i, y += 32) {
                const float d = fp16_to_fp32(b[i].d);
                for (int j = 0; j < 32; ++j) y[j] = float(b[i].qs[j]) * d;
            }
            return true;
        }
        case DType::IQ4_NL: {
            auto* b = static_cast<const BlockIQ4_NL*>(src);
            for (int64_t i = 0; i < n / 32; ++i, y += 32) {
                const float d = fp16_to_fp32(b[i].d);
                for (int j = 0; j < 16; ++j) {
                    y[j] = d * kIq4nlTable[b[i].qs[j] & 0xF];
                    y[j + 16] = d * kIq4nlTable[b[i].qs[j] >> 4];
                }
            }
            return true;
        }
        case DType::Q4_K: {
            auto* b = static_cast<const BlockQ4_K*>(src);
            for (int64_t i = 0; i < n / 256; ++i) {
                const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
                const uint8_t* q = b[i].qs;
                for (int g = 0; g < 4; ++g, q += 32) {
                    uint8_t sc, m;
                    get_scale_min_k4(2 * g, b[i].scales, &sc, &m);
                    const float d1 = d * sc, m1 = dmin * m;
                    get_scale_min_k4(2 * g + 1, b[i].scales, &sc, &m);
                    const float d2 = d * sc, m2 = dmin * m;
                    for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
                    for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
                }
            }
            return true;
        }
        case DType::Q5_K: {
            auto* b = static_cast<const BlockQ5_K*>(src);
            for (int64_t i = 0; i < n / 256; ++i) {
                const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
                const uint8_t* q = b[i].qs;
                const uint8_t* qh = b[i].qh;
                for (int g = 0; g < 4; ++g, q += 32) {
                    uint8_t sc, m;
                    get_scale_min_k4(2 * g, b[i].scales, &sc, &m);
                    const float d1 = d * sc, m1 = dmin * m;
                    get_scale_min_k4(2 * g + 1, b[i].scales, &sc, &m);
                    const float d2 = d * sc, m2 = dmin * m;
                    for (int l = 0; l < 32; ++l)
                        *y++ = d1 * ((q[l] & 0xF) + (((qh[l] >> (2 * g)) & 1) << 4)) - m1;
                    for (int l = 0; l < 32; ++l)
                        *y++ = d2 * ((q[l] >> 4) + (((qh[l] >> (2 * g + 1)) & 1) << 4)) - m2;
                }
            }
            return true;
        }
        case DType::Q6_K: {
            auto* b = static_cast<const BlockQ6_K*>(src);
            for (int64_t i = 0; i < n / 256; ++i) {
                const float d = fp16_to_fp32(b[i].d);
                const uint8_t* ql = b[i].ql;
                const uint8_t* qh = b[i].qh;
                const int8_t* sc = b[i].scales;
                for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
                    for (int l = 0; l < 32; ++l) {
                        const int is = l / 16;
                        const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                        const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                        y[l] = d * sc[is + 0] * q1;
                        y[l + 32] = d * sc[is + 2] * q2;
                        y[l + 64] = d * sc[is + 4] * q3;
                        y[l + 96] = d * sc[is + 6] * q4;
                    }
                }
            }
            return true;
        }
        case DType::Q8_K: {
            auto* b = static_cast<const BlockQ8_K*>(src);
            for (int64_t i = 0; i < n / 256; ++i)
                for (int j = 0; j < 256; ++j) *y++ = b[i].d * b[i].qs[j];
            return true;
        }
        default:
            return false;
    }
}

void quantize_row_q8_0(const float* x, void* dst, int64_t n) {
    auto* b = static_cast<BlockQ8_0*>(dst);
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.f;
        const float id = d ? 1.f / d : 0.f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < 32; ++j) b[i].qs[j] = int8_t(std::roundf(x[j] * id));
    }
}

void quantize_row_q8_1(const float* x, void* dst, int64_t n) {
    auto* b = static_cast<BlockQ8_1*>(dst);
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.f;
        const float id = d ? 1.f / d : 0.f;
        b[i].d = fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            b[i].qs[j] = int8_t(std::roundf(x[j] * id));
            sum += b[i].qs[j];
        }
        b[i].s = fp32_to_fp16(float(sum) * d);
    }
}

void quantize_row_q4_0(const float* x, void* dst, int64_t n) {
    auto* b = static_cast<BlockQ4_0*>(dst);
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float amax = 0, mx = 0;
        for (int j = 0; j < 32; ++j)
            if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), mx = x[j];
        const float d = mx / -8.f;
        const float id = d ? 1.f / d : 0.f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < 16; ++j) {
            const uint8_t a = uint8_t(std::min(15, int(x[j] * id + 8.5f)));
            const uint8_t c = uint8_t(std::min(15, int(x[j + 16] * id + 8.5f)));
            b[i].qs[j] = uint8_t(a | (c << 4));
        }
    }
}

void quantize_row_q4_1(const float* x, void* dst, int64_t n) {
    auto* b = static_cast<BlockQ4_1*>(dst);
    for (int64_t i = 0; i < n / 32; ++i, x += 32) {
        float mn = x[0], mx = x[0];
        for (int j = 1; j < 32; ++j) mn = std::min(mn, x[j]), mx = std::max(mx, x[j]);
        const float d = (mx - mn) / 15.f;
        const float id = d ? 1.f / d : 0.f;
        b[i].d = fp32_to_fp16(d);
        b[i].m = fp32_to_fp16(mn);
        for (int j = 0; j < 16; ++j) {
            const uint8_t a = uint8_t(std::min(15, int((x[j] - mn) * id + 0.5f)));
            const uint8_t c = uint8_t(std::min(15, int((x[j + 16] - mn) * id + 0.5f)));
            b[i].qs[j] = uint8_t(a | (c << 4));
        }
    }
}

}  // namespace strata

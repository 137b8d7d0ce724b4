// Scalar reference vec-dots (ggml's integer forms; the K-quants' are in kquant.cpp),
// activation preparation and the vec-dot row loop. SIMD variants are in vec_dot_avx2.cpp / vec_dot_avx512.cpp and are
// selected by vec_dot_fn() through dispatch; matmul() and the batched kernels it picks
// are in matmul.cpp.
#include "tensor/cpu/kernels.h"

#include <cmath>
#include <cstring>

#include "base/status.h"
#include "tensor/cpu/kquant.h"
#include "tensor/cpu/simd.h"

namespace strata::cpu {

namespace {

float dot_f32(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const float*>(w);
    auto* b = static_cast<const float*>(x);
    float s = 0;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

float dot_f16_f16(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const uint16_t*>(w);
    auto* b = static_cast<const uint16_t*>(x);
    double s = 0;  // ggml accumulates f16 dots in double on the scalar path
    for (int64_t i = 0; i < n; ++i) s += double(fp16_to_fp32(a[i])) * double(fp16_to_fp32(b[i]));
    return float(s);
}

float dot_bf16_f32(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const uint16_t*>(w);
    auto* b = static_cast<const float*>(x);
    float s = 0;
    for (int64_t i = 0; i < n; ++i) s += bf16_to_fp32(a[i]) * b[i];
    return s;
}

float dot_q4_0_q8_0(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ4_0*>(w);
    auto* b = static_cast<const BlockQ8_0*>(x);
    float s = 0;
    for (int64_t i = 0; i < n / 32; ++i) {
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            sumi += ((a[i].qs[j] & 0xF) - 8) * b[i].qs[j];
            sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + 16];
        }
        s += float(sumi) * (fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d));
    }
    return s;
}

float dot_q4_1_q8_1(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ4_1*>(w);
    auto* b = static_cast<const BlockQ8_1*>(x);
    float s = 0;
    for (int64_t i = 0; i < n / 32; ++i) {
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            sumi += (a[i].qs[j] & 0xF) * b[i].qs[j];
            sumi += (a[i].qs[j] >> 4) * b[i].qs[j + 16];
        }
        s += (fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d)) * float(sumi) +
             fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
    }
    return s;
}

float dot_q5_0_q8_0(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ5_0*>(w);
    auto* b = static_cast<const BlockQ8_0*>(x);
    float s = 0;
    for (int64_t i = 0; i < n / 32; ++i) {
        uint32_t h;
        std::memcpy(&h, a[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            const int lo = ((a[i].qs[j] & 0xF) | (((h >> j) & 1) << 4)) - 16;
            const int hi = ((a[i].qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4)) - 16;
            sumi += lo * b[i].qs[j] + hi * b[i].qs[j + 16];
        }
        s += float(sumi) * (fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d));
    }
    return s;
}

float dot_q5_1_q8_1(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ5_1*>(w);
    auto* b = static_cast<const BlockQ8_1*>(x);
    float s = 0;
    for (int64_t i = 0; i < n / 32; ++i) {
        uint32_t h;
        std::memcpy(&h, a[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            const int lo = (a[i].qs[j] & 0xF) | (((h >> j) & 1) << 4);
            const int hi = (a[i].qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4);
            sumi += lo * b[i].qs[j] + hi * b[i].qs[j + 16];
        }
        s += (fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d)) * float(sumi) +
             fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
    }
    return s;
}

float dot_q8_0_q8_0(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockQ8_0*>(w);
    auto* b = static_cast<const BlockQ8_0*>(x);
    float s = 0;
    for (int64_t i = 0; i < n / 32; ++i) {
        int sumi = 0;
        for (int j = 0; j < 32; ++j) sumi += a[i].qs[j] * b[i].qs[j];
        s += float(sumi) * (fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d));
    }
    return s;
}

constexpr int8_t kIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                               1,    13,   25,  38,  53,  69,  89,  113};

float dot_iq4_nl_q8_0(int64_t n, const void* w, const void* x) {
    auto* a = static_cast<const BlockIQ4_NL*>(w);
    auto* b = static_cast<const BlockQ8_0*>(x);
    float s = 0;
    for (int64_t i = 0; i < n / 32; ++i) {
        int sumi = 0;
        for (int j = 0; j < 16; ++j)
            sumi += kIq4nl[a[i].qs[j] & 0xF] * b[i].qs[j] + kIq4nl[a[i].qs[j] >> 4] * b[i].qs[j + 16];
        s += float(sumi) * (fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d));
    }
    return s;
}

// f32-activation mode: the weight row dequantized into f32 in chunks (every weight type
// dequantizes to the same floats however it is computed; see f32_lane_dot) and dotted in
// the 16-lane order every SIMD kernel of this mode reproduces.
template <DType W>
float dot_exact(int64_t n, const void* w, const void* x) {
    constexpr int64_t kChunk = 256;
    const auto info = dtype_info_checked(W);
    auto* xf = static_cast<const float*>(x);
    float buf[kChunk];
    F32Lanes acc;
    for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t m = std::min<int64_t>(kChunk, n - i);
        dequantize_row(W, static_cast<const uint8_t*>(w) + size_t(i / info.block_size) * info.block_bytes,
                       buf, m);
        acc.add(buf, xf + i, i, m);
    }
    return acc.sum(n);
}

}  // namespace

void F32Lanes::add(const float* w, const float* x, int64_t k0, int64_t m) {
    for (int64_t j = 0; j < m; ++j) {
        float& a = lane[(k0 + j) % 16];
        a = std::fma(w[j], x[j], a);
    }
}

float F32Lanes::sum(int64_t n) {
    // Padding to a multiple of 16: the SIMD kernels load zeros there, fma(0, 0, a).
    for (int64_t k = n; k % 16; ++k) lane[k % 16] = std::fma(0.f, 0.f, lane[k % 16]);
    float v8[8], r[4];
    for (int i = 0; i < 8; ++i) v8[i] = lane[i] + lane[i + 8];
    for (int i = 0; i < 4; ++i) r[i] = v8[i] + v8[i + 4];
    const float a = r[0] + r[2], b = r[1] + r[3];
    return a + b;
}

float f32_lane_dot(DType wt, const uint8_t* w, const float* x, int64_t n) {
    const VecDotFn f = scalar_vec_dot(wt, true);
    STRATA_ASSERT(f != nullptr);
    return f(n, w, x);
}

DType act_type_for(DType weight, bool exact) {
    if (exact) return DType::F32;
    switch (weight) {
        case DType::Q4_0: case DType::Q5_0: case DType::Q8_0: case DType::IQ4_NL: return DType::Q8_0;
        case DType::Q4_1: case DType::Q5_1: return DType::Q8_1;
        case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return DType::Q8_K;
        case DType::F16: return DType::F16;
        default: return DType::F32;
    }
}

void quantize_act_row(const float* x, DType at, void* dst, int64_t n) {
    switch (at) {
        case DType::Q8_0: quantize_row_q8_0_fast(x, dst, n); return;
        case DType::Q8_1: quantize_row_q8_1_fast(x, dst, n); return;
        case DType::Q8_K: quantize_row_q8_k_ref(x, static_cast<BlockQ8_K*>(dst), n, false); return;
        case DType::F16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(x[i]);
            return;
        }
        default: std::memcpy(dst, x, size_t(n) * 4); return;
    }
}

VecDotFn scalar_vec_dot(DType wt, bool exact) {
    if (exact) {
        switch (wt) {
            case DType::F32: return dot_exact<DType::F32>;
            case DType::F16: return dot_exact<DType::F16>;
            case DType::BF16: return dot_exact<DType::BF16>;
            case DType::Q4_0: return dot_exact<DType::Q4_0>;
            case DType::Q4_1: return dot_exact<DType::Q4_1>;
            case DType::Q5_0: return dot_exact<DType::Q5_0>;
            case DType::Q5_1: return dot_exact<DType::Q5_1>;
            case DType::Q8_0: return dot_exact<DType::Q8_0>;
            case DType::IQ4_NL: return dot_exact<DType::IQ4_NL>;
            case DType::Q4_K: return dot_exact<DType::Q4_K>;
            case DType::Q5_K: return dot_exact<DType::Q5_K>;
            case DType::Q6_K: return dot_exact<DType::Q6_K>;
            default: return nullptr;
        }
    }
    switch (wt) {
        case DType::F32: return dot_f32;
        case DType::F16: return dot_f16_f16;
        case DType::BF16: return dot_bf16_f32;
        case DType::Q4_0: return dot_q4_0_q8_0;
        case DType::Q4_1: return dot_q4_1_q8_1;
        case DType::Q5_0: return dot_q5_0_q8_0;
        case DType::Q5_1: return dot_q5_1_q8_1;
        case DType::Q8_0: return dot_q8_0_q8_0;
        case DType::IQ4_NL: return dot_iq4_nl_q8_0;
        case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return scalar_kq_vec_dot(wt);
        default: return nullptr;
    }
}

void prepare_acts(const float* x, int64_t n_rows, int64_t n_cols, DType wt, bool exact, Acts* out) {
    out->type = act_type_for(wt, exact);
    out->n_rows = n_rows;
    out->n_cols = n_cols;
    out->row_bytes = dtype_row_bytes(out->type, uint64_t(n_cols));
    out->buf.resize(out->row_bytes * size_t(n_rows));
    for (int64_t r = 0; r < n_rows; ++r)
        quantize_act_row(x + r * n_cols, out->type, out->buf.data() + size_t(r) * out->row_bytes, n_cols);
}

void gemm_rows(DType wt, const uint8_t* w, size_t w_row_bytes, const Acts& x, float* y, int64_t ldy,
               int64_t r0, int64_t r1, bool exact) {
    const VecDotFn dot = vec_dot_fn(wt, exact);
    STRATA_ASSERT(dot != nullptr);
    // Blocks of rows × all activation rows: a 4-row weight tile stays in L1 while we sweep
    // the batch, so prefill reads each weight row once per tile.
    constexpr int64_t kTile = 4;
    for (int64_t rb = r0; rb < r1; rb += kTile) {
        const int64_t re = std::min(r1, rb + kTile);
        for (int64_t b = 0; b < x.n_rows; ++b) {
            const uint8_t* xb = x.row(b);
            for (int64_t r = rb; r < re; ++r)
                y[b * ldy + r] = dot(x.n_cols, w + size_t(r) * w_row_bytes, xb);
        }
    }
}

}  // namespace strata::cpu

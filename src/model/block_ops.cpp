// The block's named ops (block_ops.h). Where a body follows ggml's CPU backend, the
// comment says which op it mirrors; docs/design.md ("Numerics modes") says why.
#include "model/block_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/ggml_math.h"
#include "tensor/dtype.h"

namespace strata::model::ops {

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);
    const float scale = 1.0f / std::sqrt(float(sum / double(n)) + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

void rms_norm_heads(float* x, const float* w, int64_t n_heads, int64_t hd, float eps) {
    for (int64_t h = 0; h < n_heads; ++h) rms_norm(x + h * hd, w, x + h * hd, hd, eps);
}

Rope Rope::from(const RopeSpec& s) {
    Rope r;
    r.kind = s.kind;
    r.n_rot = s.n_rot;
    r.theta_scale = std::pow(s.base, -2.0f / float(s.n_rot));
    r.freq_scale = s.freq_scale;
    return r;
}

// Rotates every pair of every head by +angle (sin_sign 1) or -angle (-1).
void Rope::rotate(float* v, int64_t n_heads, int64_t hd, int64_t pos, bool fused, float sin_sign) const {
    if (kind == RopeKind::kNone) return;
    const int64_t half = n_rot / 2;
    // Pair i's two elements: adjacent (normal) or half a rotation apart (NeoX).
    const int64_t stride = kind == RopeKind::kNeox ? half : 1;
    const int64_t step = kind == RopeKind::kNeox ? 1 : 2;
    for (int64_t h = 0; h < n_heads; ++h) {
        float* r = v + h * hd;
        float theta = float(pos);
        for (int64_t i = 0; i < half; ++i, theta *= theta_scale) {
            const float t = freq_scale == 1.f ? theta : freq_scale * theta;
            const float c = std::cos(t), s = sin_sign * std::sin(t);
            float* p0 = r + i * step;
            float* p1 = p0 + stride;
            const float a = *p0, b = *p1;
            if (fused) {
                *p0 = std::fma(a, c, -(b * s));
                *p1 = std::fma(a, s, b * c);
            } else {
                *p0 = a * c - b * s;
                *p1 = a * s + b * c;
            }
        }
    }
}

void Rope::apply(float* v, int64_t n_heads, int64_t hd, int64_t pos, bool fused) const {
    rotate(v, n_heads, hd, pos, fused, 1.f);
}

void Rope::apply_inverse(float* v, int64_t n_heads, int64_t hd, int64_t pos) const {
    rotate(v, n_heads, hd, pos, false, -1.f);
}

namespace {
constexpr float kGeluCoefA = 0.044715f;
constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
inline float gelu_tanh(float x) { return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kGeluCoefA * x * x))); }
}  // namespace

void gated_act(FfnAct act, float* g, const float* u, int64_t n, bool ggml) {
    // SiLU, both modes: x / (1 + exp(-x)) with ggml's vectorized exp (about 1.5 ulp, the
    // same bits at every ISA level), which is what llama.cpp computes.
    if (act == FfnAct::kSilu) return strata::ops::swiglu_ggml(g, u, n);
    if (!ggml) {
        // f32 mode: GELU's tanh form as x * sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3),
        // i.e. x / (1 + exp(-2z)) with the same exp (identical to 0.5 x (1 + tanh z) in real
        // arithmetic, without libm's scalar tanhf per value).
        constexpr int64_t kChunk = 256;
        float t[kChunk];
        for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
            const int64_t m = std::min(kChunk, n - i0);
            for (int64_t i = 0; i < m; ++i) {
                const float x = g[i0 + i];
                t[i] = -2.0f * (kSqrt2OverPi * x * (1.0f + kGeluCoefA * x * x));
            }
            strata::ops::vexp_ggml(t, t, m);
            for (int64_t i = 0; i < m; ++i) g[i0 + i] = g[i0 + i] / (1.0f + t[i]) * u[i0 + i];
        }
        return;
    }
    // ggml's geglu: outside (-10, 10) the identity or zero, else GELU looked up at the
    // input rounded to f16 in a table holding, for every f16 value, the f16 of the f32
    // formula (built once, as ggml builds its own).
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (uint32_t h = 0; h < 65536; ++h) t[h] = fp16_to_fp32(fp32_to_fp16(gelu_tanh(fp16_to_fp32(uint16_t(h)))));
        return t;
    }();
    for (int64_t i = 0; i < n; ++i) {
        const float x = g[i];
        if (x <= -10.0f) {
            g[i] = 0.0f;
        } else if (x >= 10.0f) {
            g[i] = x * u[i];
        } else {
            g[i] = table[fp32_to_fp16(x)] * u[i];
        }
    }
}

void softcap(float* x, int64_t n, float c) {
    const float inv = 1.0f / c;
    for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] * inv) * c;
}

}  // namespace strata::model::ops

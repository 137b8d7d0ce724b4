// The named ops a block is built from (docs/design.md, "Model layer"). Each op has the
// f32 reference body (the default numerics) and, where llama.cpp computes differently,
// the body that matches ggml's CPU arithmetic (the q8 mode, `ggml = true`). The forward
// pass, relevance (LRP) and function-vector injection call these instead of copies.
#pragma once

#include <cstdint>

#include "model/model.h"

namespace strata::model::ops {

// y = x / sqrt(mean(x^2) + eps) * w over n values; the sum of squares is taken in double
// and the scale applied before the weight, as ggml's rms_norm followed by mul.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
// The same per head, in place: n_heads rows of hd values share the weight w[hd].
void rms_norm_heads(float* x, const float* w, int64_t n_heads, int64_t hd, float eps);

// Per-layer RoPE: cos/sin of pos * theta_scale^i (theta_scale = base^(-2/n_rot)), angles
// by iterated float multiplication as ggml's rope cache; kNorm rotates (2i, 2i+1), kNeox
// (i, i + n_rot/2). `fused` reproduces llama.cpp's contracted rotation (fma(x0, c, -(x1*s))).
struct Rope {
    RopeKind kind = RopeKind::kNorm;
    int64_t n_rot = 0;
    float theta_scale = 1.f, freq_scale = 1.f;
    static Rope from(const RopeSpec& s);
    void apply(float* v, int64_t n_heads, int64_t hd, int64_t pos, bool fused) const;
    // The inverse rotation (relevance / gradients): rotates by -angle.
    void apply_inverse(float* v, int64_t n_heads, int64_t hd, int64_t pos) const;

private:
    void rotate(float* v, int64_t n_heads, int64_t hd, int64_t pos, bool fused, float sin_sign) const;
};

// g[i] = act(g[i]) * u[i]. SiLU: x / (1 + exp(-x)) with ggml's vectorized exp in both
// modes. GELU (tanh form): ggml's f16 lookup table (ggml), or in f32 x / (1 + exp(-2z)),
// z = sqrt(2/pi) (x + 0.044715 x^3), with the same exp.
void gated_act(FfnAct act, float* g, const float* u, int64_t n, bool ggml);

// logits = c * tanh(logits / c), as ggml's scale / tanh / scale.
void softcap(float* x, int64_t n, float c);

}  // namespace strata::model::ops

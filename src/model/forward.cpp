// CPU forward pass. Numerics follow ggml's CPU backend where it matters for matching
// llama.cpp token for token: RMSNorm sums squares in double, RoPE angles come from
// iterated float multiplication of base^(-2/n_rot), activations are quantized per the
// weight type (kernels.h), and with an f16 cache the query and the softmax weights are
// rounded to f16 before their dot products, as ggml's f16 mul_mat does.
#include "model/forward.h"

#include "ops/ggml_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace strata::model {

namespace {

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);
    const float scale = 1.0f / std::sqrt(float(sum / double(n)) + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

}  // namespace

Context::Context(const Model& m, ContextParams p) : model_(m), params_(p) {}

Result<std::unique_ptr<Context>> Context::create(const Model& model, ContextParams p) {
    const HParams& hp = model.hp;
    if (p.n_ctx == 0) p.n_ctx = hp.n_ctx_train;
    if (p.n_ctx < 1) return invalid_input("context size must be positive (got {})", p.n_ctx);
    if (p.n_ctx > hp.n_ctx_train)
        return out_of_range("context size {} exceeds the model's training context {}", p.n_ctx, hp.n_ctx_train);
    if (p.n_threads < 1 || p.n_threads > 256)
        return invalid_input("thread count must be in 1..256 (got {})", p.n_threads);
    std::unique_ptr<Context> c(new Context(model, p));
    c->pool_ = std::make_unique<ThreadPool>(p.n_threads);
    c->kv_row_bytes_ = size_t(hp.n_head_kv * hp.head_dim) * (p.kv_f16 ? 2 : 4);
    const size_t kv_bytes = c->kv_row_bytes_ * size_t(p.n_ctx) * size_t(hp.n_layer);
    c->k_cache_.resize(kv_bytes);
    c->v_cache_.resize(kv_bytes);
    c->rope_theta_scale_ = std::pow(hp.rope_base, -2.0f / float(hp.n_rot));
    return c;
}

void Context::truncate(int64_t n) { n_past_ = std::clamp<int64_t>(n, 0, n_past_); }

void Context::matmul(const Weight& w, const float* x, int64_t n, float* y) {
    cpu::matmul(w.type, w.data, w.row_bytes, w.n_rows, x, n, w.n_cols, y, w.n_rows, params_.exact, *pool_, &acts_);
}

// q: [n][n_head*hd] (already roped); writes out: [n][n_head*hd].
// Default mode mirrors llama.cpp's non-flash attention: the KV view is padded to a multiple
// of 32 cells (masked cells get p = 0), q and the softmax weights are rounded to f16 for
// the f16 dot products, exp and the dot accumulation follow ops/ggml_math.h. Exact mode
// computes the same attention in f32 with libm exp.
void Context::attention(int64_t layer, int64_t n, const float* q, float* out) {
    const HParams& hp = model_.hp;
    const int64_t hd = hp.head_dim, n_head = hp.n_head, group = hp.n_head / hp.n_head_kv;
    const int64_t n_ctx = params_.n_ctx;
    const uint8_t* kbase = k_cache_.data() + size_t(layer) * size_t(n_ctx) * kv_row_bytes_;
    const uint8_t* vbase = v_cache_.data() + size_t(layer) * size_t(n_ctx) * kv_row_bytes_;
    const size_t elt = params_.kv_f16 ? 2 : 4;
    const float scale = 1.0f / std::sqrt(float(hd));
    const bool f16 = params_.kv_f16;
    const bool ggml = f16 && !params_.exact;
    // llama.cpp pads its KV view to 256 cells; padded cells carry p = 0 and only decide which
    // values ggml_vec_dot_f16 sums in its 64-wide SIMD body versus its scalar tail. Any
    // multiple of 64 gives the same bits, so we pad to 64 and skip the extra zeros.
    const int64_t n_kv_pad = (n_past_ + n + 63) / 64 * 64;
    pool_->parallel_for(n * n_head, 1, [&](int64_t b, int64_t e) {
        std::vector<float> scores(static_cast<size_t>(n_kv_pad)), probs(static_cast<size_t>(n_kv_pad));
        std::vector<float> qf(static_cast<size_t>(hd));
        std::vector<uint16_t> q16(static_cast<size_t>(hd)), p16(static_cast<size_t>(n_kv_pad));
        for (int64_t job = b; job < e; ++job) {
            const int64_t i = job / n_head, h = job % n_head, kvh = h / group;
            const int64_t n_vis = n_past_ + i + 1;  // causal
            const int64_t n_kv = ggml ? n_kv_pad : n_vis;
            const float* qrow = q + i * n_head * hd + h * hd;
            for (int64_t d = 0; d < hd; ++d) q16[size_t(d)] = fp32_to_fp16(qrow[d]);
            float mx = -INFINITY;
            for (int64_t j = 0; j < n_vis; ++j) {
                const uint8_t* kr = kbase + size_t(j) * kv_row_bytes_ + size_t(kvh * hd) * elt;
                float s = 0;
                if (ggml) {
                    s = ops::dot_f16_ggml(q16.data(), reinterpret_cast<const uint16_t*>(kr), hd);
                } else if (f16) {
                    auto* k16 = reinterpret_cast<const uint16_t*>(kr);
                    for (int64_t d = 0; d < hd; ++d) s += qrow[d] * fp16_to_fp32(k16[d]);
                } else {
                    auto* k32 = reinterpret_cast<const float*>(kr);
                    for (int64_t d = 0; d < hd; ++d) s += qrow[d] * k32[d];
                }
                s *= scale;
                scores[size_t(j)] = s;
                mx = std::max(mx, s);
            }
            for (int64_t j = n_vis; j < n_kv; ++j) scores[size_t(j)] = -INFINITY;
            double sum;
            if (ggml) {
                sum = ops::softmax_exp_ggml(scores.data(), probs.data(), n_kv, mx);
            } else {
                sum = 0;
                for (int64_t j = 0; j < n_kv; ++j) sum += probs[size_t(j)] = std::exp(scores[size_t(j)] - mx);
            }
            const float inv = float(1.0 / sum);
            for (int64_t j = 0; j < n_kv; ++j) probs[size_t(j)] *= inv;
            float* o = out + i * n_head * hd + h * hd;
            if (ggml) {
                for (int64_t j = 0; j < n_kv; ++j) p16[size_t(j)] = fp32_to_fp16(probs[size_t(j)]);
                for (int64_t d = 0; d < hd; ++d) {
                    auto* vt = reinterpret_cast<const uint16_t*>(vbase) + size_t(kvh * hd + d) * size_t(n_ctx);
                    o[d] = ops::dot_f16_ggml(p16.data(), vt, n_kv);
                }
            } else {
                for (int64_t d = 0; d < hd; ++d) {
                    const uint8_t* vt = vbase + size_t(kvh * hd + d) * size_t(n_ctx) * elt;
                    float acc = 0;
                    if (f16) {
                        for (int64_t j = 0; j < n_kv; ++j)
                            acc += probs[size_t(j)] * fp16_to_fp32(reinterpret_cast<const uint16_t*>(vt)[j]);
                    } else {
                        for (int64_t j = 0; j < n_kv; ++j) acc += probs[size_t(j)] * reinterpret_cast<const float*>(vt)[j];
                    }
                    o[d] = acc;
                }
            }
        }
    });
}

Result<std::span<const float>> Context::eval(std::span<const int32_t> tokens, bool all_logits) {
    const HParams& hp = model_.hp;
    const int64_t n = int64_t(tokens.size());
    if (n == 0) return invalid_input("eval: no tokens");
    if (n_past_ + n > params_.n_ctx)
        return out_of_range("context full: {} cached + {} new tokens exceed the context size {}", n_past_, n,
                            params_.n_ctx);
    for (int32_t t : tokens)
        if (t < 0 || t >= hp.n_vocab) return invalid_input("token id {} out of range [0, {})", t, hp.n_vocab);

    const int64_t E = hp.n_embd, hd = hp.head_dim, q_dim = hp.n_head * hd, kv_dim = hp.n_head_kv * hd;
    x_.resize(size_t(n * E));
    h_.resize(size_t(n * std::max(E, q_dim)));
    q_.resize(size_t(n * q_dim));
    k_.resize(size_t(n * kv_dim));
    v_.resize(size_t(n * kv_dim));
    att_.resize(size_t(n * q_dim));
    g_.resize(size_t(n * hp.n_ff));
    u_.resize(size_t(n * hp.n_ff));

    for (int64_t i = 0; i < n; ++i)
        dequantize_row(model_.tok_embd.type, model_.tok_embd.data + size_t(tokens[size_t(i)]) * model_.tok_embd.row_bytes,
                       &x_[size_t(i * E)], E);

    const bool fused = !params_.exact;
    auto rope = [&](float* v, int64_t n_heads, int64_t pos) {
        for (int64_t h = 0; h < n_heads; ++h) {
            float* r = v + h * hd;
            // ggml's rope cache: theta starts at p and is multiplied by theta_scale per
            // pair, in f32 (not p * theta_scale^i, which rounds differently). llama.cpp's
            // compiled rotation contracts x0*cos - x1*sin into fma(x0, cos, -(x1*sin)) on FMA
            // machines; default mode does the same so the rotated q/k match bit for bit.
            float theta = float(pos);
            for (int64_t i = 0; i < hp.n_rot / 2; ++i, theta *= rope_theta_scale_) {
                const float c = std::cos(theta), s = std::sin(theta);
                const float a = r[2 * i], b = r[2 * i + 1];
                if (fused) {
                    r[2 * i] = std::fma(a, c, -(b * s));
                    r[2 * i + 1] = std::fma(a, s, b * c);
                } else {
                    r[2 * i] = a * c - b * s;
                    r[2 * i + 1] = a * s + b * c;
                }
            }
        }
    };

    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const LayerWeights& L = model_.layers[size_t(l)];
        for (int64_t i = 0; i < n; ++i) rmsnorm(&x_[size_t(i * E)], L.attn_norm.data(), &h_[size_t(i * E)], E, hp.rms_eps);
        matmul(L.wq, h_.data(), n, q_.data());
        matmul(L.wk, h_.data(), n, k_.data());
        matmul(L.wv, h_.data(), n, v_.data());
        // K rows by position: [n_ctx][kv_dim]; V transposed: [kv_dim][n_ctx] (as llama.cpp
        // stores it without flash attention, so the weighted sum is a contiguous dot).
        uint8_t* kdst = k_cache_.data() + (size_t(l) * size_t(params_.n_ctx) + size_t(n_past_)) * kv_row_bytes_;
        uint8_t* vlayer = v_cache_.data() + size_t(l) * size_t(params_.n_ctx) * kv_row_bytes_;
        for (int64_t i = 0; i < n; ++i) {
            rope(&q_[size_t(i * q_dim)], hp.n_head, n_past_ + i);
            rope(&k_[size_t(i * kv_dim)], hp.n_head_kv, n_past_ + i);
            const size_t pos = size_t(n_past_ + i);
            if (params_.kv_f16) {
                auto* kr = reinterpret_cast<uint16_t*>(kdst + size_t(i) * kv_row_bytes_);
                auto* vt = reinterpret_cast<uint16_t*>(vlayer);
                for (int64_t d = 0; d < kv_dim; ++d) {
                    kr[d] = fp32_to_fp16(k_[size_t(i * kv_dim + d)]);
                    vt[size_t(d) * size_t(params_.n_ctx) + pos] = fp32_to_fp16(v_[size_t(i * kv_dim + d)]);
                }
            } else {
                std::memcpy(kdst + size_t(i) * kv_row_bytes_, &k_[size_t(i * kv_dim)], kv_row_bytes_);
                auto* vt = reinterpret_cast<float*>(vlayer);
                for (int64_t d = 0; d < kv_dim; ++d) vt[size_t(d) * size_t(params_.n_ctx) + pos] = v_[size_t(i * kv_dim + d)];
            }
        }
        attention(l, n, q_.data(), att_.data());
        matmul(L.wo, att_.data(), n, h_.data());
        for (int64_t i = 0; i < n * E; ++i) x_[size_t(i)] += h_[size_t(i)];

        for (int64_t i = 0; i < n; ++i) rmsnorm(&x_[size_t(i * E)], L.ffn_norm.data(), &h_[size_t(i * E)], E, hp.rms_eps);
        matmul(L.gate, h_.data(), n, g_.data());
        matmul(L.up, h_.data(), n, u_.data());
        if (params_.exact) {
            for (int64_t i = 0; i < n * hp.n_ff; ++i) {
                const float g = g_[size_t(i)];
                g_[size_t(i)] = g / (1.0f + std::exp(-g)) * u_[size_t(i)];
            }
        } else {
            for (int64_t i = 0; i < n; ++i) ops::swiglu_ggml(&g_[size_t(i * hp.n_ff)], &u_[size_t(i * hp.n_ff)], hp.n_ff);
        }
        matmul(L.down, g_.data(), n, h_.data());
        for (int64_t i = 0; i < n * E; ++i) x_[size_t(i)] += h_[size_t(i)];
        for (LayerHook* hook : hooks_) hook->after_layer(int(l), x_.data(), n, E, n_past_);
    }

    const int64_t first = all_logits ? 0 : n - 1, n_out = n - first;
    for (int64_t i = first; i < n; ++i)
        rmsnorm(&x_[size_t(i * E)], model_.output_norm.data(), &h_[size_t((i - first) * E)], E, hp.rms_eps);
    logits_.resize(size_t(n_out * hp.n_vocab));
    matmul(model_.output, h_.data(), n_out, logits_.data());
    n_past_ += n;
    return std::span<const float>(logits_);
}

}  // namespace strata::model

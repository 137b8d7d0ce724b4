// CPU forward pass. Numerics follow ggml's CPU backend where it matters for matching
// llama.cpp token for token: RMSNorm sums squares in double, RoPE angles come from
// iterated float multiplication of base^(-2/n_rot), activations are quantized per the
// weight type (kernels.h). Attention and the KV cache live in kv/: the fp16 format keeps
// llama.cpp's f16 attention arithmetic (kv/codecs/fp16.cpp).
#include "model/forward.h"

#include "ops/ggml_math.h"

#include <algorithm>
#include <cmath>

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
    if (p.pool) {
        c->pool_ = p.pool;
    } else {
        c->own_pool_ = std::make_unique<ThreadPool>(p.n_threads);
        c->pool_ = c->own_pool_.get();
    }
    kv::CacheShape shape{int(hp.n_layer), int(hp.n_head), int(hp.n_head_kv), int(hp.head_dim), p.n_ctx};
    auto kv = kv::KvCache::create(p.kv, shape, p.kv_budget_bytes);
    if (!kv) return kv.error();
    c->kv_ = std::move(*kv);
    c->rope_theta_scale_ = std::pow(hp.rope_base, -2.0f / float(hp.n_rot));
    return c;
}

void Context::truncate(int64_t n) {
    n_past_ = std::clamp<int64_t>(n, 0, n_past_);
    kv_->truncate(n_past_);
}

void Context::matmul(const Weight& w, const float* x, int64_t n, float* y) {
    cpu::matmul(w.type, w.data, w.row_bytes, w.n_rows, x, n, w.n_cols, y, w.n_rows, params_.exact, *pool_, &acts_);
    for (MatmulHook* h : matmul_hooks_) h->after_matmul(w, x, n, y);
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
        for (int64_t i = 0; i < n; ++i) {
            rope(&q_[size_t(i * q_dim)], hp.n_head, n_past_ + i);
            rope(&k_[size_t(i * kv_dim)], hp.n_head_kv, n_past_ + i);
        }
        // The cache stores post-RoPE K and V in its own format and answers attention for
        // these n queries straight from it (kv/kv_cache.h).
        kv::LayerCache& cache = kv_->layer(int(l));
        if (Status st = cache.append(k_.data(), v_.data(), n); !st.ok()) {
            kv_->truncate(n_past_);  // undo this call's appends in the layers before
            return st;
        }
        cache.attend(q_.data(), n, att_.data(), kv::AttendOpts{pool_, params_.exact});
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

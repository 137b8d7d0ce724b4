// CPU forward pass. Numerics follow ggml's CPU backend where it matters for matching
// llama.cpp token for token: RMSNorm sums squares in double, RoPE angles come from
// iterated float multiplication of base^(-2/n_rot), activations are quantized per the
// weight type (kernels.h), and with an f16 cache the query and the softmax weights are
// rounded to f16 before their dot products, as ggml's f16 mul_mat does.
#include "model/forward.h"

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

inline float round_f16(float x) { return fp16_to_fp32(fp32_to_fp16(x)); }

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
    // ggml: theta_i = p * theta_scale^i with theta_scale = base^(-2/n_rot), iterated in f32.
    const float theta_scale = std::pow(hp.rope_base, -2.0f / float(hp.n_rot));
    float t = 1.0f;
    for (int64_t i = 0; i < hp.n_rot / 2; ++i) {
        c->rope_inv_freq_.push_back(t);
        t *= theta_scale;
    }
    return c;
}

void Context::truncate(int64_t n) { n_past_ = std::clamp<int64_t>(n, 0, n_past_); }

void Context::matmul(const Weight& w, const float* x, int64_t n, float* y) {
    cpu::prepare_acts(x, n, w.n_cols, w.type, params_.exact, &acts_);
    pool_->parallel_for(w.n_rows, 16, [&](int64_t r0, int64_t r1) {
        cpu::gemm_rows(w.type, w.data, w.row_bytes, acts_, y, w.n_rows, r0, r1, params_.exact);
    });
}

// q: [n][n_head*hd] (already roped); writes out: [n][n_head*hd].
void Context::attention(int64_t layer, int64_t n, const float* q, float* out) {
    const HParams& hp = model_.hp;
    const int64_t hd = hp.head_dim, n_head = hp.n_head, group = hp.n_head / hp.n_head_kv;
    const int64_t kv_dim = hp.n_head_kv * hd;
    const uint8_t* kbase = k_cache_.data() + size_t(layer) * size_t(params_.n_ctx) * kv_row_bytes_;
    const uint8_t* vbase = v_cache_.data() + size_t(layer) * size_t(params_.n_ctx) * kv_row_bytes_;
    const float scale = 1.0f / std::sqrt(float(hd));
    const bool f16 = params_.kv_f16;
    const bool ggml_rounding = f16 && !params_.exact;
    const int64_t n_kv_max = n_past_ + n;
    pool_->parallel_for(n * n_head, 1, [&](int64_t b, int64_t e) {
        std::vector<float> scores(static_cast<size_t>(n_kv_max)), qh(static_cast<size_t>(hd)), acc(static_cast<size_t>(hd));
        for (int64_t job = b; job < e; ++job) {
            const int64_t i = job / n_head, h = job % n_head, kvh = h / group;
            const int64_t n_kv = n_past_ + i + 1;  // causal
            for (int64_t d = 0; d < hd; ++d) {
                const float qv = q[i * n_head * hd + h * hd + d];
                qh[size_t(d)] = ggml_rounding ? round_f16(qv) : qv;
            }
            float mx = -INFINITY;
            for (int64_t j = 0; j < n_kv; ++j) {
                float s = 0;
                if (f16) {
                    auto* kr = reinterpret_cast<const uint16_t*>(kbase + size_t(j) * kv_row_bytes_) + kvh * hd;
                    for (int64_t d = 0; d < hd; ++d) s += qh[size_t(d)] * fp16_to_fp32(kr[d]);
                } else {
                    auto* kr = reinterpret_cast<const float*>(kbase + size_t(j) * kv_row_bytes_) + kvh * hd;
                    for (int64_t d = 0; d < hd; ++d) s += qh[size_t(d)] * kr[d];
                }
                s *= scale;
                scores[size_t(j)] = s;
                mx = std::max(mx, s);
            }
            double sum = 0;
            for (int64_t j = 0; j < n_kv; ++j) {
                const float p = std::exp(scores[size_t(j)] - mx);
                scores[size_t(j)] = p;
                sum += p;
            }
            const float inv = float(1.0 / sum);
            std::fill(acc.begin(), acc.end(), 0.f);
            for (int64_t j = 0; j < n_kv; ++j) {
                float p = scores[size_t(j)] * inv;
                if (ggml_rounding) p = round_f16(p);
                if (f16) {
                    auto* vr = reinterpret_cast<const uint16_t*>(vbase + size_t(j) * kv_row_bytes_) + kvh * hd;
                    for (int64_t d = 0; d < hd; ++d) acc[size_t(d)] += p * fp16_to_fp32(vr[d]);
                } else {
                    auto* vr = reinterpret_cast<const float*>(vbase + size_t(j) * kv_row_bytes_) + kvh * hd;
                    for (int64_t d = 0; d < hd; ++d) acc[size_t(d)] += p * vr[d];
                }
            }
            std::memcpy(out + i * n_head * hd + h * hd, acc.data(), size_t(hd) * 4);
        }
    });
    (void)kv_dim;
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

    auto rope = [&](float* v, int64_t n_heads, int64_t pos) {
        for (int64_t h = 0; h < n_heads; ++h) {
            float* r = v + h * hd;
            for (int64_t i = 0; i < hp.n_rot / 2; ++i) {
                const float theta = float(pos) * rope_inv_freq_[size_t(i)];
                const float c = std::cos(theta), s = std::sin(theta);
                const float a = r[2 * i], b = r[2 * i + 1];
                r[2 * i] = a * c - b * s;
                r[2 * i + 1] = a * s + b * c;
            }
        }
    };

    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const LayerWeights& L = model_.layers[size_t(l)];
        for (int64_t i = 0; i < n; ++i) rmsnorm(&x_[size_t(i * E)], L.attn_norm.data(), &h_[size_t(i * E)], E, hp.rms_eps);
        matmul(L.wq, h_.data(), n, q_.data());
        matmul(L.wk, h_.data(), n, k_.data());
        matmul(L.wv, h_.data(), n, v_.data());
        uint8_t* kdst = k_cache_.data() + (size_t(l) * size_t(params_.n_ctx) + size_t(n_past_)) * kv_row_bytes_;
        uint8_t* vdst = v_cache_.data() + (size_t(l) * size_t(params_.n_ctx) + size_t(n_past_)) * kv_row_bytes_;
        for (int64_t i = 0; i < n; ++i) {
            rope(&q_[size_t(i * q_dim)], hp.n_head, n_past_ + i);
            rope(&k_[size_t(i * kv_dim)], hp.n_head_kv, n_past_ + i);
            if (params_.kv_f16) {
                auto* kr = reinterpret_cast<uint16_t*>(kdst + size_t(i) * kv_row_bytes_);
                auto* vr = reinterpret_cast<uint16_t*>(vdst + size_t(i) * kv_row_bytes_);
                for (int64_t d = 0; d < kv_dim; ++d) {
                    kr[d] = fp32_to_fp16(k_[size_t(i * kv_dim + d)]);
                    vr[d] = fp32_to_fp16(v_[size_t(i * kv_dim + d)]);
                }
            } else {
                std::memcpy(kdst + size_t(i) * kv_row_bytes_, &k_[size_t(i * kv_dim)], kv_row_bytes_);
                std::memcpy(vdst + size_t(i) * kv_row_bytes_, &v_[size_t(i * kv_dim)], kv_row_bytes_);
            }
        }
        attention(l, n, q_.data(), att_.data());
        matmul(L.wo, att_.data(), n, h_.data());
        for (int64_t i = 0; i < n * E; ++i) x_[size_t(i)] += h_[size_t(i)];

        for (int64_t i = 0; i < n; ++i) rmsnorm(&x_[size_t(i * E)], L.ffn_norm.data(), &h_[size_t(i * E)], E, hp.rms_eps);
        matmul(L.gate, h_.data(), n, g_.data());
        matmul(L.up, h_.data(), n, u_.data());
        for (int64_t i = 0; i < n * hp.n_ff; ++i) {
            const float g = g_[size_t(i)];
            g_[size_t(i)] = g / (1.0f + std::exp(-g)) * u_[size_t(i)];
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

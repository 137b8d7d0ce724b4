// CPU forward pass. Numerics follow ggml's CPU backend where it matters for matching
// llama.cpp token for token: RMSNorm sums squares in double, RoPE angles come from
// iterated float multiplication of base^(-2/n_rot), activations are quantized per the
// weight type (kernels.h). Attention and the KV cache live in kv/: the fp16 format keeps
// llama.cpp's f16 attention arithmetic (kv/codecs/fp16.cpp).
#include "model/forward.h"

#include "model/block_ops.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace strata::model {

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
    return c;
}

Status Context::append_synthetic_kv(int64_t n, uint64_t seed) {
    const HParams& hp = model_.hp;
    if (n < 0 || n_past_ + n > params_.n_ctx)
        return out_of_range("synthetic KV: {} + {} positions exceed the context size {}", n_past_, n, params_.n_ctx);
    const int64_t kv_dim = hp.n_head_kv * hp.head_dim, chunk = 256;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> k(size_t(chunk * kv_dim)), v(k.size());
    for (int64_t done = 0; done < n; done += chunk) {
        const int64_t m = std::min(chunk, n - done);
        for (int64_t l = 0; l < hp.n_layer; ++l) {
            for (size_t i = 0; i < size_t(m * kv_dim); ++i) k[i] = nd(rng), v[i] = nd(rng);
            if (Status s = kv_->layer(int(l)).append(k.data(), v.data(), m); !s) {
                kv_->truncate(n_past_);
                return s;
            }
        }
        n_past_ += m;
    }
    return ok_status();
}

void Context::truncate(int64_t n) {
    n_past_ = std::clamp<int64_t>(n, 0, n_past_);
    kv_->truncate(n_past_);
}

Result<std::span<const float>> Context::eval(std::span<const int32_t> tokens, bool all_logits) {
    BatchItem item{this, tokens, all_logits, {}};
    if (Status s = eval_batch(std::span<BatchItem>(&item, 1)); !s) return s;
    return item.logits;
}

Status Context::eval_batch(std::span<BatchItem> items) {
    if (items.empty()) return invalid_input("eval: empty batch");
    Context& c0 = *items[0].ctx;
    const Model& model = c0.model_;
    const HParams& hp = model.hp;
    const bool exact = c0.params_.exact;
    // Row offsets of each item in the stacked activations.
    std::vector<int64_t> off(items.size() + 1, 0);
    for (size_t b = 0; b < items.size(); ++b) {
        Context& c = *items[b].ctx;
        const int64_t n = int64_t(items[b].tokens.size());
        if (&c.model_ != &model || c.params_.exact != exact || c.params_.flash_attn != c0.params_.flash_attn)
            return invalid_input("eval: batched sequences must share the model and numerics mode");
        for (size_t o = 0; o < b; ++o)
            if (items[o].ctx == &c) return invalid_input("eval: a sequence appears twice in one batch");
        if (n == 0) return invalid_input("eval: no tokens");
        if (!hp.causal && c.n_past_ != 0)
            return invalid_input("eval: {} attends bidirectionally, so a sequence is evaluated whole in one "
                                 "call (truncate(0) first); {} positions are cached",
                                 hp.arch, c.n_past_);
        if (c.n_past_ + n > c.params_.n_ctx)
            return out_of_range("context full: {} cached + {} new tokens exceed the context size {}", c.n_past_, n,
                                c.params_.n_ctx);
        for (int32_t t : items[b].tokens)
            if (t < 0 || t >= hp.n_vocab) return invalid_input("token id {} out of range [0, {})", t, hp.n_vocab);
        off[b + 1] = off[b] + n;
    }
    const int64_t n = off.back();
    ThreadPool& pool = *c0.pool_;

    const int64_t E = hp.n_embd, hd = hp.head_dim, q_dim = hp.n_head * hd, kv_dim = hp.n_head_kv * hd;
    auto& x_ = c0.x_;
    auto& h_ = c0.h_;
    auto& q_ = c0.q_;
    auto& k_ = c0.k_;
    auto& v_ = c0.v_;
    auto& att_ = c0.att_;
    auto& g_ = c0.g_;
    auto& u_ = c0.u_;
    x_.resize(size_t(n * E));
    h_.resize(size_t(n * std::max(E, q_dim)));
    q_.resize(size_t(n * q_dim));
    k_.resize(size_t(n * kv_dim));
    v_.resize(size_t(n * kv_dim));
    att_.resize(size_t(n * q_dim));
    g_.resize(size_t(n * hp.n_ff));
    u_.resize(size_t(n * hp.n_ff));

    for (size_t b = 0; b < items.size(); ++b)
        for (int64_t i = 0; i < int64_t(items[b].tokens.size()); ++i)
            dequantize_row(model.tok_embd.type,
                           model.tok_embd.data + size_t(items[b].tokens[size_t(i)]) * model.tok_embd.row_bytes,
                           &x_[size_t((off[b] + i) * E)], E);
    if (hp.embd_scale != 1.f)
        for (int64_t i = 0; i < n * E; ++i) x_[size_t(i)] *= hp.embd_scale;

    // Shared matmul over all rows; then each sequence's hooks on its own rows.
    auto matmul = [&](const Weight& w, const float* x, int64_t rows, float* y, const std::vector<int64_t>& o) {
        cpu::matmul(w.type, w.data, w.row_bytes, w.n_rows, x, rows, w.n_cols, y, w.n_rows, exact, pool, &c0.acts_);
        for (size_t b = 0; b < items.size(); ++b)
            for (MatmulHook* h : items[b].ctx->matmul_hooks_)
                h->after_matmul(w, x + o[b] * w.n_cols, o[b + 1] - o[b], y + o[b] * w.n_rows);
    };

    // Two or three matrices on the same input, one pool round trip at decode sizes; hooks
    // run after each, as with matmul().
    auto matmul3 = [&](const Weight& a, const Weight& b, const Weight* c, const float* x, int64_t rows, float* ya,
                       float* yb, float* yc, const std::vector<int64_t>& o) {
        const cpu::MatmulOut outs[3] = {{a.type, a.data, a.row_bytes, a.n_rows, ya, a.n_rows},
                                        {b.type, b.data, b.row_bytes, b.n_rows, yb, b.n_rows},
                                        {c ? c->type : a.type, c ? c->data : nullptr, c ? c->row_bytes : 0,
                                         c ? c->n_rows : 0, yc, c ? c->n_rows : 0}};
        cpu::matmul_shared_input(outs, c ? 3 : 2, x, rows, a.n_cols, exact, pool, &c0.acts_);
        const Weight* ws[3] = {&a, &b, c};
        float* ys[3] = {ya, yb, yc};
        for (int m = 0; m < (c ? 3 : 2); ++m)
            for (size_t bi = 0; bi < items.size(); ++bi)
                for (MatmulHook* h : items[bi].ctx->matmul_hooks_)
                    h->after_matmul(*ws[m], x + o[bi] * ws[m]->n_cols, o[bi + 1] - o[bi], ys[m] + o[bi] * ws[m]->n_rows);
    };

    const bool ggml = !exact;
    auto undo = [&] {
        for (auto& it : items) it.ctx->kv_->truncate(it.ctx->n_past_);
    };

    for (int64_t l = 0; l < hp.n_layer; ++l) {
        const LayerWeights& L = model.layers[size_t(l)];
        const LayerSpec& spec = hp.layer[size_t(l)];
        const ops::Rope rope = ops::Rope::from(spec.rope);
        kv::AttendOpts attend_opts{&pool, exact, c0.params_.flash_attn, pool.n_threads()};
        attend_opts.causal = spec.attn.causal;
        attend_opts.window = spec.attn.window;
        attend_opts.scale = spec.attn.kq_scale;
        // Attention: norm -> Q/K/V -> (q/k norm) -> RoPE -> (Q scale) -> cache + attend.
        for (int64_t i = 0; i < n; ++i) ops::rms_norm(&x_[size_t(i * E)], L.attn_norm.data(), &h_[size_t(i * E)], E, hp.rms_eps);
        matmul3(L.wq, L.wk, &L.wv, h_.data(), n, q_.data(), k_.data(), v_.data(), off);
        for (size_t b = 0; b < items.size(); ++b) {
            Context& c = *items[b].ctx;
            const int64_t nb = off[b + 1] - off[b];
            for (int64_t i = 0; i < nb; ++i) {
                float* qi = &q_[size_t((off[b] + i) * q_dim)];
                float* ki = &k_[size_t((off[b] + i) * kv_dim)];
                if (spec.qk_norm) {
                    ops::rms_norm_heads(qi, L.attn_q_norm.data(), hp.n_head, hd, hp.rms_eps);
                    ops::rms_norm_heads(ki, L.attn_k_norm.data(), hp.n_head_kv, hd, hp.rms_eps);
                }
                rope.apply(qi, hp.n_head, hd, c.n_past_ + i, ggml);
                rope.apply(ki, hp.n_head_kv, hd, c.n_past_ + i, ggml);
                if (spec.attn.q_scale != 1.f)
                    for (int64_t d = 0; d < q_dim; ++d) qi[d] *= spec.attn.q_scale;
            }
            // The cache stores post-RoPE K and V in its own format and answers attention for
            // these queries straight from it (kv/kv_cache.h).
            kv::LayerCache& cache = c.kv_->layer(int(l));
            if (Status st = cache.append(&k_[size_t(off[b] * kv_dim)], &v_[size_t(off[b] * kv_dim)], nb); !st.ok()) {
                undo();  // drop this call's appends in every sequence and layer
                return st;
            }
            cache.attend(&q_[size_t(off[b] * q_dim)], nb, &att_[size_t(off[b] * q_dim)], attend_opts);
            for (AttentionHook* h : c.attention_hooks_)
                h->after_attention(int(l), &q_[size_t(off[b] * q_dim)], &k_[size_t(off[b] * kv_dim)],
                                   &v_[size_t(off[b] * kv_dim)], &att_[size_t(off[b] * q_dim)], nb, c.n_past_);
        }
        matmul(L.wo, att_.data(), n, h_.data(), off);
        if (spec.post_attn_norm)
            for (int64_t i = 0; i < n; ++i)
                ops::rms_norm(&h_[size_t(i * E)], L.attn_post_norm.data(), &h_[size_t(i * E)], E, hp.rms_eps);
        for (int64_t i = 0; i < n * E; ++i) x_[size_t(i)] += h_[size_t(i)];

        // FFN: norm -> gate/up -> act(gate) * up -> down -> (post norm).
        for (int64_t i = 0; i < n; ++i) ops::rms_norm(&x_[size_t(i * E)], L.ffn_norm.data(), &h_[size_t(i * E)], E, hp.rms_eps);
        matmul3(L.gate, L.up, nullptr, h_.data(), n, g_.data(), u_.data(), nullptr, off);
        for (int64_t i = 0; i < n; ++i)
            ops::gated_act(spec.act, &g_[size_t(i * hp.n_ff)], &u_[size_t(i * hp.n_ff)], hp.n_ff, ggml);
        matmul(L.down, g_.data(), n, h_.data(), off);
        if (spec.post_ffn_norm)
            for (int64_t i = 0; i < n; ++i)
                ops::rms_norm(&h_[size_t(i * E)], L.ffn_post_norm.data(), &h_[size_t(i * E)], E, hp.rms_eps);
        for (int64_t i = 0; i < n * E; ++i) x_[size_t(i)] += h_[size_t(i)];
        for (size_t b = 0; b < items.size(); ++b)
            for (LayerHook* hook : items[b].ctx->hooks_)
                hook->after_layer(int(l), &x_[size_t(off[b] * E)], off[b + 1] - off[b], E, items[b].ctx->n_past_);
    }

    // Output rows: the last token of each sequence, or all of them when asked.
    std::vector<int64_t> out_off(items.size() + 1, 0);
    int64_t n_out = 0;
    for (size_t b = 0; b < items.size(); ++b) {
        const int64_t nb = off[b + 1] - off[b];
        const int64_t first = items[b].all_logits ? 0 : nb - 1;
        for (int64_t i = first; i < nb; ++i, ++n_out)
            ops::rms_norm(&x_[size_t((off[b] + i) * E)], model.output_norm.data(), &h_[size_t(n_out * E)], E, hp.rms_eps);
        out_off[b + 1] = n_out;
    }
    std::vector<float>& all = c0.logits_batch_;
    all.resize(size_t(n_out * hp.n_vocab));
    matmul(model.output, h_.data(), n_out, all.data(), out_off);
    if (hp.logit_softcap > 0) ops::softcap(all.data(), n_out * hp.n_vocab, hp.logit_softcap);
    for (size_t b = 0; b < items.size(); ++b) {
        Context& c = *items[b].ctx;
        c.logits_.assign(all.begin() + out_off[b] * hp.n_vocab, all.begin() + out_off[b + 1] * hp.n_vocab);
        c.n_past_ += off[b + 1] - off[b];
        items[b].logits = std::span<const float>(c.logits_);
    }
    return ok_status();
}

}  // namespace strata::model

// Recorder and the last-position relevance pass.
#include "fv/relevance.h"

#include <algorithm>
#include <cmath>

#include "model/block_ops.h"
#include "tensor/dtype.h"

namespace strata::fv {

namespace {

// Residual stream rows as the forward pass's rmsnorm sees them.
float inv_rms(const float* x, int64_t n, float eps) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i] * x[i]);
    return 1.0f / std::sqrt(float(sum / double(n)) + eps);
}

// G~(x) += backward of y = x * r(x) * w.
void norm_back(const std::vector<float>& w, const std::vector<float>& x, const std::vector<float>& gy, float eps,
               bool lrp, std::vector<float>& gx) {
    const int64_t n = int64_t(x.size());
    const float r = inv_rms(x.data(), n, eps);
    double dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += double(w[size_t(i)] * gy[size_t(i)]) * double(x[size_t(i)]);
    const double c = lrp ? 0.0 : double(r) * double(r) * double(r) * dot / double(n);
    for (int64_t i = 0; i < n; ++i)
        gx[size_t(i)] += float(double(r) * double(w[size_t(i)] * gy[size_t(i)]) - c * double(x[size_t(i)]));
}

}  // namespace

void matvec_t(const model::Weight& w, const float* g, float* y) {
    std::vector<float> row(static_cast<size_t>(w.n_cols));
    for (int64_t r = 0; r < w.n_rows; ++r) {
        const float gr = g[r];
        if (gr == 0.f) continue;
        dequantize_row(w.type, w.data + size_t(r) * w.row_bytes, row.data(), w.n_cols);
        for (int64_t c = 0; c < w.n_cols; ++c) y[c] += gr * row[size_t(c)];
    }
}

Recorder::Recorder(const model::Model& m) : m_(m) {}

void Recorder::start(int64_t n_tokens, int32_t last_token) {
    rec_ = ForwardRecord{};
    rec_.n_tokens = n_tokens;
    rec_.layers.resize(static_cast<size_t>(m_.hp.n_layer));
    auto& r0 = rec_.layers[0].resid_in;
    r0.resize(static_cast<size_t>(m_.hp.n_embd));
    dequantize_row(m_.tok_embd.type, m_.tok_embd.data + size_t(last_token) * m_.tok_embd.row_bytes, r0.data(),
                   m_.hp.n_embd);
}

void Recorder::after_layer(int layer, float* x, int64_t n_tokens, int64_t n_embd, int64_t) {
    if (layer < 0 || layer >= int(rec_.layers.size())) return;
    const float* last = x + (n_tokens - 1) * n_embd;
    rec_.layers[size_t(layer)].resid_out.assign(last, last + n_embd);
    if (layer + 1 < int(rec_.layers.size())) rec_.layers[size_t(layer + 1)].resid_in.assign(last, last + n_embd);
}

void Recorder::after_matmul(const model::Weight& w, const float* x, int64_t n, float* y) {
    if (w.layer < 0 || w.layer >= int(rec_.layers.size())) return;
    LayerRecord& L = rec_.layers[size_t(w.layer)];
    const float* xl = x + (n - 1) * w.n_cols;
    const float* yl = y + (n - 1) * w.n_rows;
    auto last_x = [&](std::vector<float>& d) { d.assign(xl, xl + w.n_cols); };
    auto last_y = [&](std::vector<float>& d) { d.assign(yl, yl + w.n_rows); };
    switch (w.role) {
        case model::WeightRole::kQ: last_x(L.h_attn), last_y(L.q); break;
        case model::WeightRole::kK: L.k.assign(y, y + n * w.n_rows); break;
        case model::WeightRole::kV: L.v.assign(y, y + n * w.n_rows); break;
        case model::WeightRole::kO: last_x(L.att), last_y(L.attn_out); break;
        case model::WeightRole::kGate: last_x(L.h_ffn), last_y(L.gate); break;
        case model::WeightRole::kUp: last_y(L.up); break;
        default: break;
    }
}

Status relevance_supports(const model::Model& m) {
    const model::HParams& hp = m.hp;
    auto refuse = [&](const char* what) {
        return unsupported("the relevance (LRP) pass implements the llama block; {} has {}", hp.arch, what);
    };
    if (!hp.causal) return refuse("bidirectional attention");
    if (hp.embd_scale != 1.f) return refuse("scaled embeddings");
    if (hp.logit_softcap > 0) return refuse("logit soft-capping");
    for (const model::LayerSpec& s : hp.layer) {
        if (s.qk_norm) return refuse("q/k RMSNorm");
        if (s.post_attn_norm || s.post_ffn_norm) return refuse("post-attention / post-FFN norms");
        if (s.act != model::FfnAct::kSilu) return refuse("a GELU FFN");
        if (s.attn.window > 0) return refuse("sliding-window layers");
        if (s.attn.q_scale != 1.f || (s.attn.kq_scale != 0 && s.attn.kq_scale != 1.0f / std::sqrt(float(hp.head_dim))))
            return refuse("a non-standard attention scale");
    }
    return ok_status();
}

Result<ForwardRecord> record_forward(model::Context& ctx, std::span<const int32_t> tokens) {
    if (tokens.empty()) return invalid_input("record_forward: no tokens");
    Recorder rec(ctx.model());
    rec.start(int64_t(tokens.size()), tokens.back());
    ctx.truncate(0);
    // Run with only the recorder attached.
    model::Context& c = ctx;
    c.clear_hooks();
    c.add_hook(&rec);
    c.add_matmul_hook(&rec);
    auto logits = c.eval(tokens);
    c.clear_hooks();
    if (!logits) return logits.error();
    rec.record().logits.assign(logits->begin(), logits->end());
    return std::move(rec.record());
}

Relevance relevance_pass(const model::Model& m, const ForwardRecord& rec, int32_t target,
                         std::span<const int32_t> label_pos, Rules rules) {
    const auto& hp = m.hp;
    const int64_t E = hp.n_embd, H = hp.n_head, Hkv = hp.n_head_kv, d = hp.head_dim, T = rec.n_tokens;
    const int64_t q_dim = H * d, kv_dim = Hkv * d, F = hp.n_ff, L = hp.n_layer, group = H / Hkv;
    const bool lrp = rules == Rules::kLrp;
    const float half = lrp ? 0.5f : 1.f;
    const float scale = 1.0f / std::sqrt(float(d));
    Relevance out;
    out.g_att.resize(static_cast<size_t>(L));
    out.attn_rel.resize(static_cast<size_t>(L));
    out.score_labels.assign(size_t(L * H), 0.f);
    out.score_all.assign(size_t(L * H), 0.f);
    out.score_signed.assign(size_t(L * H), 0.f);
    std::vector<char> is_label(size_t(T), 0);
    for (int32_t p : label_pos)
        if (p >= 0 && p < T - 1) is_label[size_t(p)] = 1;

    // Seed: the target's logit = W_out[target] . norm(x_L).
    std::vector<float> gh(static_cast<size_t>(E));
    dequantize_row(m.output.type, m.output.data + size_t(target) * m.output.row_bytes, gh.data(), E);
    out.target_logit = rec.logits.empty() ? 0.f : rec.logits[size_t(target)];
    std::vector<float> g(size_t(E), 0.f);
    norm_back(m.output_norm, rec.layers[size_t(L - 1)].resid_out, gh, hp.rms_eps, lrp, g);

    std::vector<float> mid(static_cast<size_t>(E)), g_a(static_cast<size_t>(F)), g_gate(static_cast<size_t>(F)), g_up(static_cast<size_t>(F)), g_hffn(static_cast<size_t>(E)),
        g_mid(static_cast<size_t>(E)), g_att(static_cast<size_t>(q_dim)), qr(static_cast<size_t>(q_dim)), kr(static_cast<size_t>(T * kv_dim)), g_q(static_cast<size_t>(q_dim)),
        g_k(static_cast<size_t>(kv_dim)), g_v(static_cast<size_t>(kv_dim)), g_hattn(static_cast<size_t>(E));
    std::vector<double> A(static_cast<size_t>(T)), gA(static_cast<size_t>(T));
    for (int64_t l = L - 1; l >= 0; --l) {
        const LayerRecord& R = rec.layers[size_t(l)];
        const model::LayerWeights& W = m.layers[size_t(l)];
        const model::ops::Rope rope = model::ops::Rope::from(hp.layer[size_t(l)].rope);
        // ---- MLP: x_out = mid + down(silu(gate) * up), gate/up from norm(mid).
        for (int64_t i = 0; i < E; ++i) mid[size_t(i)] = R.resid_in[size_t(i)] + R.attn_out[size_t(i)];
        std::fill(g_a.begin(), g_a.end(), 0.f);
        matvec_t(W.down, g.data(), g_a.data());
        for (int64_t i = 0; i < F; ++i) {
            const float gt = R.gate[size_t(i)], u = R.up[size_t(i)];
            const float sig = 1.0f / (1.0f + std::exp(-gt));
            const float sg = gt * sig;
            const float g_sg = half * g_a[size_t(i)] * u;
            g_up[size_t(i)] = half * g_a[size_t(i)] * sg;
            g_gate[size_t(i)] = g_sg * (lrp ? sig : sig * (1.0f + gt * (1.0f - sig)));
        }
        std::fill(g_hffn.begin(), g_hffn.end(), 0.f);
        matvec_t(W.gate, g_gate.data(), g_hffn.data());
        matvec_t(W.up, g_up.data(), g_hffn.data());
        g_mid = g;
        norm_back(W.ffn_norm, mid, g_hffn, hp.rms_eps, lrp, g_mid);

        // ---- attention at the last position.
        std::fill(g_att.begin(), g_att.end(), 0.f);
        matvec_t(W.wo, g_mid.data(), g_att.data());
        out.g_att[size_t(l)] = g_att;
        qr = R.q;
        rope.apply(qr.data(), H, d, T - 1, false);
        kr = R.k;
        for (int64_t j = 0; j < T; ++j) rope.apply(&kr[size_t(j * kv_dim)], Hkv, d, j, false);
        std::fill(g_q.begin(), g_q.end(), 0.f);
        std::fill(g_k.begin(), g_k.end(), 0.f);
        std::fill(g_v.begin(), g_v.end(), 0.f);
        auto& rel = out.attn_rel[size_t(l)];
        rel.assign(size_t(H * T), 0.f);
        for (int64_t h = 0; h < H; ++h) {
            const int64_t kvh = h / group;
            const float* qh = &qr[size_t(h * d)];
            const float* go = &g_att[size_t(h * d)];
            double mx = -1e300;
            for (int64_t j = 0; j < T; ++j) {
                const float* kj = &kr[size_t(j * kv_dim + kvh * d)];
                double s = 0;
                for (int64_t i = 0; i < d; ++i) s += double(qh[i]) * double(kj[i]);
                A[size_t(j)] = s * double(scale);
                mx = std::max(mx, A[size_t(j)]);
            }
            double z = 0;
            for (int64_t j = 0; j < T; ++j) z += (A[size_t(j)] = std::exp(A[size_t(j)] - mx));
            double wsum = 0;
            std::vector<double> o(size_t(d), 0.0);
            for (int64_t j = 0; j < T; ++j) {
                A[size_t(j)] /= z;
                const float* vj = &R.v[size_t(j * kv_dim + kvh * d)];
                double s = 0;
                for (int64_t i = 0; i < d; ++i) s += double(go[i]) * double(vj[i]), o[size_t(i)] += A[size_t(j)] * double(vj[i]);
                gA[size_t(j)] = s;
                const float r = float(A[size_t(j)] * s);
                rel[size_t(h * T + j)] = r;
                if (j < T - 1) {
                    if (r > 0) out.score_all[size_t(l * H + h)] += r;
                    if (r > 0 && is_label[size_t(j)]) out.score_labels[size_t(l * H + h)] += r;
                }
                wsum += A[size_t(j)] * half * s;
            }
            for (int64_t i = 0; i < d; ++i)
                out.attn_check = std::max(out.attn_check, float(std::fabs(o[size_t(i)] - double(R.att[size_t(h * d + i)]))));
            double sgn = 0;
            for (int64_t i = 0; i < d; ++i) sgn += double(R.att[size_t(h * d + i)]) * double(go[i]);
            out.score_signed[size_t(l * H + h)] = float(sgn);
            // softmax backward of the (halved) probability gradient, then Q.K^T (halved again).
            float* gq = &g_q[size_t(h * d)];
            for (int64_t j = 0; j < T; ++j) {
                const double gs = A[size_t(j)] * (half * gA[size_t(j)] - wsum);
                const float c = float(double(half) * double(scale) * gs);
                const float* kj = &kr[size_t(j * kv_dim + kvh * d)];
                for (int64_t i = 0; i < d; ++i) gq[i] += c * kj[i];
                if (j == T - 1)
                    for (int64_t i = 0; i < d; ++i) g_k[size_t(kvh * d + i)] += c * qh[i];
            }
            const float av = half * float(A[size_t(T - 1)]);
            for (int64_t i = 0; i < d; ++i) g_v[size_t(kvh * d + i)] += av * go[i];
        }
        rope.apply_inverse(g_q.data(), H, d, T - 1);
        rope.apply_inverse(g_k.data(), Hkv, d, T - 1);
        std::fill(g_hattn.begin(), g_hattn.end(), 0.f);
        matvec_t(W.wq, g_q.data(), g_hattn.data());
        matvec_t(W.wk, g_k.data(), g_hattn.data());
        matvec_t(W.wv, g_v.data(), g_hattn.data());
        g = g_mid;
        norm_back(W.attn_norm, R.resid_in, g_hattn, hp.rms_eps, lrp, g);
    }
    out.g_embed = g;
    return out;
}

}  // namespace strata::fv

// strata kv-error: where a KV format's attention error comes from (spec kvarn.md §6.3,
// metrics 2 and 3). Two contexts of one model run the same text in lock step, one token per
// eval, model compute always f32 (--exact): the reference with an fp32 cache and the
// configuration with --kv. Per layer and position:
//   static      — a shadow cache in the configured format is fed the *reference* K/V (same
//                 tile schedule) and answers the *reference* query; MAE against the
//                 reference attention output (the error of one layer, nothing fed forward);
//   accumulated — the configured run's own attention output against the reference one
//                 (quantization error that has propagated through layers and steps).
// Both are averaged over layers and reported per position bin with their gap. Metric 3:
// at the end of each segment the shadow caches are decoded and every quantized K vector
// (per token and KV head, model frame) gives e = |K^| - |K|; we report p99/p99.9 of |e|/|K|
// and E_M/E_T, the magnitude share of the squared error among the worst 1% / 5% vectors
// (E_T = |K^ - K|^2 = E_M + E_D with E_M = e^2; spec §5 Eq. 3). Vectors kept in FP16 (sink,
// tail) are skipped.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <numeric>

#include <fmt/core.h>

#include "cli/common.h"
#include "kv/kv_cache.h"
#include "model/hooks.h"

namespace strata::cli {
namespace {

struct Bins {
    std::vector<double> sum;
    std::vector<int64_t> cnt;
    void add(int64_t bin, double v) {
        if (size_t(bin) >= sum.size()) sum.resize(size_t(bin) + 1), cnt.resize(size_t(bin) + 1);
        sum[size_t(bin)] += v, cnt[size_t(bin)] += 1;
    }
    double mean(size_t b) const { return b < cnt.size() && cnt[b] ? sum[b] / double(cnt[b]) : 0.0; }
};

double mae(const float* a, const float* b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::fabs(double(a[i]) - double(b[i]));
    return s / double(n);
}

// Captures each layer's attention output of the configured run.
struct CaptureHook : model::AttentionHook {
    int64_t q_dim = 0;
    std::vector<std::vector<float>> att;  // [layer][q_dim], newest token
    void after_attention(int layer, const float*, const float*, const float*, const float* a, int64_t n,
                         int64_t) override {
        att[size_t(layer)].assign(a + (n - 1) * q_dim, a + n * q_dim);
    }
};

// On the reference run: keeps its attention output and K, and runs the shadow caches.
struct ShadowHook : model::AttentionHook {
    int64_t q_dim = 0, kv_dim = 0;
    ThreadPool* pool = nullptr;
    std::vector<std::unique_ptr<kv::LayerCache>> shadow;  // per layer, configured format
    std::vector<std::vector<float>> att, k_ref;            // [layer][q_dim] newest; [layer][pos*kv_dim]
    std::vector<float> out;
    Bins* stat = nullptr;
    int64_t bin = 256;
    Status err;  // first shadow-cache failure (reported after the eval)
    void after_attention(int layer, const float* q, const float* k, const float* v, const float* a, int64_t n,
                         int64_t pos0) override {
        kv::LayerCache& c = *shadow[size_t(layer)];
        if (!err.ok()) return;
        if (Status s = c.append(k, v, n); !s.ok()) {
            err = s;
            return;
        }
        out.resize(size_t(n * q_dim));
        c.attend(q, n, out.data(), kv::AttendOpts{pool, true});
        for (int64_t i = 0; i < n; ++i) stat->add((pos0 + i) / bin, mae(out.data() + i * q_dim, a + i * q_dim, q_dim));
        att[size_t(layer)].assign(a + (n - 1) * q_dim, a + n * q_dim);
        k_ref[size_t(layer)].insert(k_ref[size_t(layer)].end(), k, k + n * kv_dim);
    }
};

double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    const size_t i = std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5));
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(i), v.end());
    return v[i];
}

}  // namespace

Command kv_error_command() {
    struct State {
        ModelOpts mo;
        std::string file, out;
        int chunks = 1, bin = 256;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "kv-error";
    c.summary = "static vs accumulated attention error and K magnitude error of a KV format";
    c.declare = [st](CLI::App* app) {
        add_model_opts(app, st->mo);
        app->add_option("-f,--file", st->file, "text file")->required();
        app->add_option("--chunks", st->chunks, "segments of --ctx tokens")->capture_default_str();
        app->add_option("--bin", st->bin, "positions per bin")->capture_default_str();
        app->add_option("-o,--out", st->out, "TSV of per-bin MAE (bin, static, accumulated, gap)");
    };
    c.run = [st]() -> int {
        const char* cmd = "kv-error";
        if (st->chunks < 1) return report(cmd, invalid_input("--chunks: must be >= 1 (got {})", st->chunks));
        if (st->bin < 1) return report(cmd, invalid_input("--bin: must be >= 1 (got {})", st->bin));
        if (!st->mo.kv_k.empty() || !st->mo.kv_v.empty())
            return report(cmd, invalid_input("--kv-k/--kv-v: kv-error takes one format (--kv)"));
        ModelOpts mo = st->mo;
        mo.exact = true;  // spec §6.1: model compute f32, only the cache changes
        if (mo.ctx == 0) mo.ctx = 1024;
        if (mo.ctx < 2) return report(cmd, invalid_input("--ctx: must be >= 2 (got {})", mo.ctx));
        auto text = read_text_file(st->file, "-f");
        if (!text) return report(cmd, text.error());
        auto l = load(mo);  // the configured run
        if (!l) return report(cmd, l.error());
        const auto& hp = l->model->hp;
        model::ContextParams rp;
        rp.n_ctx = mo.ctx;
        rp.exact = true;
        rp.kv.k = rp.kv.v = "fp32";
        rp.pool = &l->ctx->pool();
        auto ref = model::Context::create(*l->model, rp);
        if (!ref) return report(cmd, ref.error());
        auto method = kv::make_kv_method(mo.kv);
        if (!method) return report(cmd, method.error());

        const int64_t L = mo.ctx;
        std::vector<int32_t> toks = l->tokenizer->encode(*text, false, false);
        const int64_t n_seg = std::min<int64_t>(int64_t(toks.size()) / L, st->chunks);
        if (n_seg < 1) return report(cmd, invalid_input("-f: {} tokens, fewer than one segment of {}", toks.size(), L));

        const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim, hd = hp.head_dim;
        Bins stat, accum;
        CaptureHook cap;
        cap.q_dim = q_dim;
        cap.att.resize(size_t(hp.n_layer));
        kv::ByteBudget budget(SIZE_MAX / 4);  // declared first: outlives the shadow caches in sh
        ShadowHook sh;
        sh.q_dim = q_dim, sh.kv_dim = kv_dim, sh.pool = &l->ctx->pool(), sh.stat = &stat, sh.bin = st->bin;
        sh.att.resize(size_t(hp.n_layer));
        sh.k_ref.resize(size_t(hp.n_layer));
        l->ctx->add_attention_hook(&cap);
        (*ref)->add_attention_hook(&sh);
        kv::CacheShape shape{int(hp.n_layer), int(hp.n_head), int(hp.n_head_kv), int(hp.head_dim), L};
        std::vector<double> rel, e_m, e_t;  // per quantized K vector
        for (int64_t s = 0; s < n_seg; ++s) {
            l->ctx->truncate(0);
            (*ref)->truncate(0);
            sh.shadow.clear();
            for (int64_t layer = 0; layer < hp.n_layer; ++layer) {
                auto lc = (*method)->make_layer(shape, int(layer), budget);
                if (!lc) return report(cmd, lc.error());
                sh.shadow.push_back(std::move(*lc));
                sh.k_ref[size_t(layer)].clear();
            }
            for (int64_t t = 0; t < L; ++t) {
                const std::span<const int32_t> tok(&toks[size_t(s * L + t)], 1);
                if (auto r = (*ref)->eval(tok); !r) return report(cmd, r.error());
                if (!sh.err.ok()) return report(cmd, sh.err.with_context("shadow cache"));
                if (auto r = l->ctx->eval(tok); !r) return report(cmd, r.error());
                double acc = 0;
                for (int64_t layer = 0; layer < hp.n_layer; ++layer)
                    acc += mae(cap.att[size_t(layer)].data(), sh.att[size_t(layer)].data(), q_dim);
                accum.add(t / st->bin, acc / double(hp.n_layer));
                if ((t + 1) % 128 == 0)
                    fmt::print(stderr, "\rsegment {}/{}: {}/{} tokens", s + 1, n_seg, t + 1, L);
            }
            // Metric 3 on the shadow caches: what attention sees vs the reference K.
            std::vector<float> kq, vq;
            for (int64_t layer = 0; layer < hp.n_layer; ++layer) {
                sh.shadow[size_t(layer)]->decode(kq, vq);
                const std::vector<float>& kr = sh.k_ref[size_t(layer)];
                for (int64_t p = 0; p < L; ++p)
                    for (int64_t h = 0; h < hp.n_head_kv; ++h) {
                        const float* a = &kr[size_t(p * kv_dim + h * hd)];
                        const float* b = &kq[size_t(p * kv_dim + h * hd)];
                        double na = 0, nb = 0, d2 = 0;
                        for (int64_t j = 0; j < hd; ++j)
                            na += double(a[j]) * a[j], nb += double(b[j]) * b[j], d2 += (double(b[j]) - a[j]) * (b[j] - a[j]);
                        // FP16 sink / tail vectors are not quantized: fp16 rounding leaves a
                        // relative error near 5e-4, 2-bit codes one of 0.1 or more.
                        if (std::sqrt(d2) < 2e-3 * std::sqrt(na)) continue;
                        const double e = std::sqrt(nb) - std::sqrt(na);
                        rel.push_back(std::fabs(e) / std::max(std::sqrt(na), 1e-30));
                        e_m.push_back(e * e);
                        e_t.push_back(d2);
                    }
            }
        }
        fmt::print(stderr, "\n");

        fmt::print("kv {}: {} segments x {} tokens, static vs accumulated attention MAE (mean over {} layers)\n", mo.kv,
                   n_seg, L, hp.n_layer);
        fmt::print("bin\tstatic\taccumulated\tgap\n");
        std::ofstream out;
        if (!st->out.empty()) {
            out.open(st->out);
            if (!out) return report(cmd, io_error("{}: cannot create", st->out));
            out << "bin\tstatic\taccumulated\tgap\n";
        }
        for (size_t b = 0; b < accum.cnt.size(); ++b) {
            const double s = stat.mean(b), a = accum.mean(b);
            const std::string line = fmt::format("{}\t{:.6g}\t{:.6g}\t{:.6g}\n", b, s, a, a - s);
            fmt::print("{}", line);
            if (out.is_open()) out << line;
        }
        std::vector<size_t> order(e_t.size());
        std::iota(order.begin(), order.end(), size_t{0});
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return e_t[a] > e_t[b]; });
        auto share = [&](double frac) {
            const size_t n = std::max<size_t>(1, size_t(frac * double(order.size())));
            double m = 0, t = 0;
            for (size_t i = 0; i < std::min(n, order.size()); ++i) m += e_m[order[i]], t += e_t[order[i]];
            return t > 0 ? m / t : 0.0;
        };
        fmt::print("K magnitude error over {} quantized vectors: p99 |e|/|K| {:.4f}, p99.9 {:.4f}; "
                   "E_M/E_T top 1% {:.3f}, top 5% {:.3f}\n",
                   rel.size(), quantile(rel, 0.99), quantile(rel, 0.999), share(0.01), share(0.05));
        return kExitOk;
    };
    return c;
}

}  // namespace strata::cli

// `strata perplexity`: llama-perplexity's statistics in teacher-forced *decode* mode. The
// text is tokenized and cut into --chunks segments of --ctx tokens; each segment starts
// from an empty cache and is fed --batch tokens per eval (default 1: every cache write
// and read goes through the configured KV format one token at a time, so quantization
// error accumulates as in generation). Every position t < ctx-1 is scored on token t+1.
// Prints PPL (±), and with a base file the KL divergence to the base run (mean ±, median,
// percentiles), same-top-1 share, Δp of the right token, and mean KL per position bin.
//
// Base file (--kl-divergence-base writes, --kl-divergence reads), little-endian:
//   "STRKLD01", u32 n_vocab, u32 top_k, u32 n_pos, u32 n_tokens, i32 tokens[n_tokens],
//   then per scored position: i32 ids[top_k], f32 logprob[top_k] (the base run's top_k
//   tokens, descending, FP64 log-softmax), f32 logprob of the right token.
// KL uses the base's top_k tokens plus one bucket for the rest of the vocabulary: it is a
// (slight) lower bound of the full KL, exact when the rest holds no mass.
// --dump writes one TSV line per position (segment, pos, nll, kl, top1_same, dp) for the
// evaluation scripts (tools/kv_eval.py).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>

#include "cli/common.h"

namespace strata::cli {

namespace {

struct BaseFile {
    uint32_t n_vocab = 0, top_k = 0, n_pos = 0;
    std::vector<int32_t> tokens, ids;
    std::vector<float> lp, lp_right;
};

constexpr char kMagic[8] = {'S', 'T', 'R', 'K', 'L', 'D', '0', '1'};

Result<BaseFile> read_base(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return not_found("--kl-divergence: {}: cannot open", path);
    char magic[8];
    uint32_t n_tok = 0;
    BaseFile b;
    f.read(magic, 8);
    f.read(reinterpret_cast<char*>(&b.n_vocab), 4).read(reinterpret_cast<char*>(&b.top_k), 4);
    f.read(reinterpret_cast<char*>(&b.n_pos), 4).read(reinterpret_cast<char*>(&n_tok), 4);
    if (!f || std::memcmp(magic, kMagic, 8) != 0) return invalid_input("--kl-divergence: {}: not a strata KL base file", path);
    if (b.top_k == 0 || b.top_k > b.n_vocab || n_tok > (1u << 26) || b.n_pos > n_tok)
        return invalid_input("--kl-divergence: {}: bad header", path);
    b.tokens.resize(n_tok);
    f.read(reinterpret_cast<char*>(b.tokens.data()), std::streamsize(4 * size_t(n_tok)));
    b.ids.resize(size_t(b.n_pos) * b.top_k);
    b.lp.resize(b.ids.size());
    b.lp_right.resize(b.n_pos);
    for (uint32_t p = 0; p < b.n_pos; ++p) {
        f.read(reinterpret_cast<char*>(&b.ids[size_t(p) * b.top_k]), std::streamsize(4 * size_t(b.top_k)));
        f.read(reinterpret_cast<char*>(&b.lp[size_t(p) * b.top_k]), std::streamsize(4 * size_t(b.top_k)));
        f.read(reinterpret_cast<char*>(&b.lp_right[p]), 4);
    }
    if (!f) return invalid_input("--kl-divergence: {}: truncated", path);
    for (int32_t id : b.ids)
        if (id < 0 || uint32_t(id) >= b.n_vocab) return invalid_input("--kl-divergence: {}: token id out of range", path);
    return b;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const double x = q * double(v.size() - 1);
    const size_t i = size_t(x);
    return i + 1 < v.size() ? v[i] + (x - double(i)) * (v[i + 1] - v[i]) : v[i];
}

double mean(const std::vector<double>& v) { return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }
double stderr_of(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    const double m = mean(v);
    double ss = 0;
    for (double x : v) ss += (x - m) * (x - m);
    return std::sqrt(ss / double(v.size() - 1) / double(v.size()));
}

}  // namespace

Command perplexity_command() {
    struct State {
        ModelOpts mo;
        std::string file, base_out, base_in, dump;
        int chunks = 0, batch = 1, top_k = 1024, bin = 256;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "perplexity";
    c.summary = "perplexity and KL divergence to a base run, in teacher-forced decode mode";
    c.declare = [st](CLI::App* app) {
        add_model_opts(app, st->mo);
        add_fv_opts(app, st->mo);
        app->add_option("-f,--file", st->file, "text file to score")->required();
        app->add_option("--chunks", st->chunks, "segments of --ctx tokens to score (0 = all)")->capture_default_str();
        app->add_option("--batch", st->batch, "tokens per eval (1 = decode mode)")->capture_default_str();
        app->add_option("--kl-divergence-base", st->base_out, "write this run's top-k log-probs as a KL base file");
        app->add_option("--kl-divergence", st->base_in, "compare with a base file written by --kl-divergence-base");
        app->add_option("--top-k", st->top_k, "tokens per position kept in a base file")->capture_default_str();
        app->add_option("--bin", st->bin, "positions per KL bin")->capture_default_str();
        app->add_option("--dump", st->dump, "per-position TSV (segment, pos, nll, kl, top1_same, dp)");
    };
    c.run = [st]() -> int {
        const char* cmd = "perplexity";
        if (!st->base_out.empty() && !st->base_in.empty())
            return report(cmd, invalid_input("--kl-divergence: cannot be combined with --kl-divergence-base"));
        if (st->chunks < 0) return report(cmd, invalid_input("--chunks: must be >= 0 (got {})", st->chunks));
        if (st->batch < 1) return report(cmd, invalid_input("--batch: must be >= 1 (got {})", st->batch));
        if (st->bin < 1) return report(cmd, invalid_input("--bin: must be >= 1 (got {})", st->bin));
        ModelOpts mo = st->mo;
        if (mo.ctx == 0) mo.ctx = 512;
        if (mo.ctx < 2) return report(cmd, invalid_input("--ctx: must be >= 2 (got {})", mo.ctx));
        auto text = read_text_file(st->file, "-f");
        if (!text) return report(cmd, text.error());
        auto l = load(mo);
        if (!l) return report(cmd, l.error());
        const int64_t L = l->ctx->n_ctx(), V = l->model->hp.n_vocab;
        std::vector<int32_t> toks = l->tokenizer->encode(*text, false, false);
        int64_t n_seg = int64_t(toks.size()) / L;
        if (n_seg == 0) return report(cmd, invalid_input("-f: {} tokens, fewer than one segment of {}", toks.size(), L));
        if (st->chunks > 0) n_seg = std::min<int64_t>(n_seg, st->chunks);
        toks.resize(size_t(n_seg * L));
        const uint32_t top_k = uint32_t(std::clamp<int64_t>(st->top_k, 1, V));
        const uint32_t n_pos = uint32_t(n_seg * (L - 1));

        BaseFile base;
        if (!st->base_in.empty()) {
            auto b = read_base(st->base_in);
            if (!b) return report(cmd, b.error());
            base = std::move(*b);
            if (base.n_vocab != uint32_t(V) || base.tokens != toks || base.n_pos != n_pos)
                return report(cmd, invalid_input("--kl-divergence: {} was made from other text, --ctx or --chunks",
                                                 st->base_in));
        }
        std::ofstream bout, dump;
        if (!st->base_out.empty()) {
            bout.open(st->base_out, std::ios::binary);
            if (!bout) return report(cmd, io_error("{}: cannot create", st->base_out));
            const uint32_t hdr[4] = {uint32_t(V), top_k, n_pos, uint32_t(toks.size())};
            bout.write(kMagic, 8).write(reinterpret_cast<const char*>(hdr), 16);
            bout.write(reinterpret_cast<const char*>(toks.data()), std::streamsize(4 * toks.size()));
        }
        if (!st->dump.empty()) {
            dump.open(st->dump);
            if (!dump) return report(cmd, io_error("{}: cannot create", st->dump));
            dump << "segment\tpos\tnll\tkl\ttop1_same\tdp\n";
        }

        std::vector<double> nll, kl, dp, lsm(static_cast<size_t>(V));
        std::vector<std::vector<double>> bins;
        int64_t same_top = 0, pos_i = 0;
        std::vector<int32_t> order(static_cast<size_t>(V));
        size_t kv_bytes = 0;
        for (int64_t s = 0; s < n_seg; ++s) {
            l->ctx->truncate(0);
            for (int64_t t0 = 0; t0 < L - 1; t0 += st->batch) {
                const int64_t nb = std::min<int64_t>(st->batch, L - 1 - t0);
                auto logits = l->ctx->eval(std::span<const int32_t>(&toks[size_t(s * L + t0)], size_t(nb)), true);
                if (!logits) return report(cmd, logits.error());
                for (int64_t i = 0; i < nb; ++i, ++pos_i) {
                    const int64_t t = t0 + i;
                    log_softmax(logits->data() + i * V, V, lsm);
                    const int32_t right = toks[size_t(s * L + t + 1)];
                    nll.push_back(-lsm[size_t(right)]);
                    const int32_t top1 = int32_t(std::max_element(lsm.begin(), lsm.end()) - lsm.begin());
                    if (bout.is_open()) {
                        std::iota(order.begin(), order.end(), 0);
                        std::partial_sort(order.begin(), order.begin() + top_k, order.end(),
                                          [&](int32_t a, int32_t b) { return lsm[size_t(a)] > lsm[size_t(b)]; });
                        std::vector<float> lpk(top_k);
                        for (uint32_t k = 0; k < top_k; ++k) lpk[k] = float(lsm[size_t(order[k])]);
                        const float lr = float(lsm[size_t(right)]);
                        bout.write(reinterpret_cast<const char*>(order.data()), std::streamsize(4 * top_k));
                        bout.write(reinterpret_cast<const char*>(lpk.data()), std::streamsize(4 * top_k));
                        bout.write(reinterpret_cast<const char*>(&lr), 4);
                    }
                    double k_l = 0, d_p = 0;
                    bool same = false;
                    if (!base.ids.empty()) {
                        const int32_t* ids = &base.ids[size_t(pos_i) * top_k];
                        const float* blp = &base.lp[size_t(pos_i) * base.top_k];
                        double pk = 0, qk = 0;
                        for (uint32_t k = 0; k < base.top_k; ++k) {
                            const double p = std::exp(double(blp[k]));
                            k_l += p * (double(blp[k]) - lsm[size_t(ids[k])]);
                            pk += p, qk += std::exp(lsm[size_t(ids[k])]);
                        }
                        const double pr = std::max(0.0, 1 - pk), qr = std::max(1e-300, 1 - qk);
                        if (pr > 1e-12) k_l += pr * (std::log(pr) - std::log(qr));
                        k_l = std::max(0.0, k_l);
                        same = top1 == ids[0];
                        same_top += same;
                        d_p = std::exp(lsm[size_t(right)]) - std::exp(double(base.lp_right[size_t(pos_i)]));
                        kl.push_back(k_l), dp.push_back(d_p);
                        const size_t bi = size_t(t / st->bin);
                        if (bins.size() <= bi) bins.resize(bi + 1);
                        bins[bi].push_back(k_l);
                    }
                    if (dump.is_open())
                        dump << fmt::format("{}\t{}\t{:.6g}\t{:.6g}\t{}\t{:.6g}\n", s, t, nll.back(), k_l, int(same), d_p);
                }
            }
            kv_bytes = std::max(kv_bytes, l->ctx->kv_cache().bytes());
            fmt::print(stderr, "[{}/{}] ppl so far {:.4f}\n", s + 1, n_seg, std::exp(mean(nll)));
        }
        const double ppl = std::exp(mean(nll));
        fmt::print("kv K {} / V {}: {} segments x {} tokens, {} scored positions, batch {}\n", mo.kv_k.empty() ? mo.kv : mo.kv_k,
                   mo.kv_v.empty() ? mo.kv : mo.kv_v, n_seg, L, nll.size(), st->batch);
        fmt::print("KV bytes per token (allocator, at {} tokens): {:.1f}\n", L - 1, double(kv_bytes) / double(L - 1));
        fmt::print("Final estimate: PPL = {:.4f} +/- {:.5f}\n", ppl, ppl * stderr_of(nll));
        if (!kl.empty()) {
            const double n = double(kl.size()), ps = double(same_top) / n;
            double rms_dp = 0;
            for (double x : dp) rms_dp += x * x;
            fmt::print("Mean    KLD: {:10.6f} +/- {:10.6f}\n", mean(kl), stderr_of(kl));
            fmt::print("Maximum KLD: {:10.6f}\n", *std::max_element(kl.begin(), kl.end()));
            for (auto [name, q] : {std::pair{"99.9%", 0.999}, {"99.0%", 0.99}, {"95.0%", 0.95}, {"90.0%", 0.9},
                                   {"Median", 0.5}, {"10.0%", 0.1}, {"Minimum", 0.0}})
                fmt::print("{:7} KLD: {:10.6f}\n", name, percentile(kl, q));
            fmt::print("Same top p: {:6.3f} +/- {:5.3f} %\n", 100 * ps, 100 * std::sqrt(ps * (1 - ps) / n));
            fmt::print("Mean    Δp: {:6.3f} +/- {:5.3f} %\n", 100 * mean(dp), 100 * stderr_of(dp));
            fmt::print("RMS     Δp: {:6.3f} %\n", 100 * std::sqrt(rms_dp / n));
            for (auto [name, q] : {std::pair{"99.9%", 0.999}, {"99.0%", 0.99}, {"Median", 0.5}, {"1.0%", 0.01}, {"0.1%", 0.001}})
                fmt::print("{:7}  Δp: {:6.3f} %\n", name, 100 * percentile(dp, q));
            fmt::print("Mean KLD per {}-position bin:", st->bin);
            for (auto& b : bins) fmt::print(" {:.6f}", mean(b));
            fmt::print("\n");
        }
        return kExitOk;
    };
    return c;
}

}  // namespace strata::cli

// `strata bench`: llama-bench's measurements in its vocabulary. pp<N>: one batched eval
// of N tokens on a fresh context; tg<N>: N single-token evals after an optional depth
// prefill (-d). Each test runs -r times (after --warmup untimed rounds, default 1) and
// reports tokens/s mean and standard deviation (and median, min, max in JSON), plus the
// memory bandwidth this machine sustains (a multi-threaded streaming read, measured here)
// and the share of it that decode achieves: weight bytes per token x tokens/s / bandwidth.
// --kv-compare A,B,...: the tg test for several KV formats in one process, B sequences
// per format filled once to depth -d, rounds alternating the format order (round r starts
// at format r mod n) so drift in machine load hits every format alike; reports per format
// the median tokens/s, min-max, and the median over rounds of the ratio to the first
// format measured in the same round; the same from process CPU time (meaningful with -t 1
// on a loaded machine, where wall time mostly measures the other load).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>

#include <time.h>

#include "cli/common.h"

namespace strata::cli {

namespace {

struct Stat {
    double mean = 0, stdev = 0;
};

// CPU time of this process: with one thread, the time decode actually ran, which a
// shared machine's other load does not inflate (wall time is reported next to it).
double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Stat stats(const std::vector<double>& v) {
    Stat s;
    if (v.empty()) return s;
    s.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.stdev = v.size() > 1 ? std::sqrt(ss / double(v.size() - 1)) : 0;
    return s;
}

// Streaming read bandwidth with `threads` threads over a buffer far larger than the caches.
double measure_bandwidth_gbs(int threads) {
    const size_t n = size_t(256) << 20;  // 256 MiB
    std::vector<uint64_t> buf(n / 8);
    for (size_t i = 0; i < buf.size(); i += 512) buf[i] = i;  // touch pages
    std::vector<double> runs;
    for (int rep = 0; rep < 5; ++rep) {
        std::vector<std::thread> ts;
        std::vector<uint64_t> sink(size_t(threads), 0);
        auto t0 = std::chrono::steady_clock::now();
        for (int t = 0; t < threads; ++t)
            ts.emplace_back([&, t] {
                const size_t b = buf.size() * size_t(t) / size_t(threads), e = buf.size() * size_t(t + 1) / size_t(threads);
                uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (size_t i = b; i + 4 <= e; i += 4) a0 += buf[i], a1 += buf[i + 1], a2 += buf[i + 2], a3 += buf[i + 3];
                sink[size_t(t)] = a0 + a1 + a2 + a3;
            });
        for (auto& t : ts) t.join();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        runs.push_back(double(n) / s / 1e9);
    }
    std::sort(runs.begin(), runs.end());
    return runs[runs.size() / 2];
}

// The --kv-compare path (see the file comment). Depth is filled once per sequence; each
// round truncates back to it, so after the first round (a warm-up unless --warmup 0) the
// pending tile of the fill is flushed and timed rounds hold no flush unless n_gen crosses
// a tile boundary.
template <class State, class Loaded, class Tokens>
int run_compare(const State& st, const ModelOpts& mo, Loaded& l, Tokens& random_tokens) {
    const std::vector<std::string> formats = split_commas(st.kv_compare);
    if (st.n_gen <= 0) return report("bench", invalid_input("--kv-compare: needs -n > 0"));
    using clock = std::chrono::steady_clock;
    const size_t nf = formats.size();
    std::vector<std::vector<std::unique_ptr<model::Context>>> seqs(nf);
    for (size_t f = 0; f < nf; ++f)
        for (int b = 0; b < st.batch; ++b) {
            model::ContextParams cp;
            cp.n_ctx = l.ctx->n_ctx();
            cp.exact = mo.exact;
            cp.flash_attn = mo.flash_attn;
            cp.kv.k = cp.kv.v = formats[f];
            cp.pool = &l.ctx->pool();
            auto c = model::Context::create(*l.model, cp);
            if (!c) return report("bench", c.error().with_context("--kv-compare " + formats[f]));
            if (st.depth > 0) {
                Status s = st.synthetic ? (*c)->append_synthetic_kv(st.depth, 1000 + uint64_t(b))
                                        : (*c)->eval(random_tokens(st.depth)).status();
                if (!s) return report("bench", s);
            }
            seqs[f].push_back(std::move(*c));
        }
    std::vector<std::vector<double>> tps(nf), ratio(nf), tps_cpu(nf), ratio_cpu(nf);
    std::vector<double> kv_bytes(nf);
    for (int rep = -st.warmup; rep < st.reps; ++rep) {  // negative rounds are warm-up
        std::vector<double> round(nf), round_cpu(nf);
        for (size_t o = 0; o < nf; ++o) {
            const size_t f = (o + size_t(rep + st.warmup)) % nf;
            for (auto& c : seqs[f]) c->truncate(st.depth);
            std::vector<std::vector<int32_t>> toks;
            for (size_t b = 0; b < seqs[f].size(); ++b) toks.push_back(random_tokens(st.n_gen));
            std::vector<model::BatchItem> items(seqs[f].size());
            const auto t0 = clock::now();
            const double c0 = process_cpu_seconds();
            for (int i = 0; i < st.n_gen; ++i) {
                for (size_t b = 0; b < seqs[f].size(); ++b)
                    items[b] = {seqs[f][b].get(), std::span<const int32_t>(&toks[b][size_t(i)], 1), false, {}};
                if (Status s = model::Context::eval_batch(items); !s) return report("bench", s);
            }
            const double n_tok = double(st.n_gen) * double(seqs[f].size());
            round[f] = n_tok / std::chrono::duration<double>(clock::now() - t0).count();
            round_cpu[f] = n_tok / (process_cpu_seconds() - c0);
            kv_bytes[f] = double(seqs[f][0]->kv_cache().bytes()) / double(seqs[f][0]->n_past());
        }
        if (rep < 0) continue;
        for (size_t f = 0; f < nf; ++f) {
            tps[f].push_back(round[f]), ratio[f].push_back(round[f] / round[0]);
            tps_cpu[f].push_back(round_cpu[f]), ratio_cpu[f].push_back(round_cpu[f] / round_cpu[0]);
        }
    }
    const int threads = l.ctx->pool().n_threads();
    if (st.output == "json") {
        nlohmann::json j;
        j["model"] = l.model->path;
        j["threads"] = threads;
        j["isa"] = cpu::isa_name(cpu::active_isa());
        j["tg"] = {{"n", st.n_gen}, {"depth", st.depth}, {"batch", st.batch}, {"reps", st.reps}, {"warmup", st.warmup}};
        for (size_t f = 0; f < nf; ++f) {
            const auto [mn, mx] = std::minmax_element(tps[f].begin(), tps[f].end());
            j["formats"].push_back({{"kv", formats[f]}, {"tps_median", median(tps[f])}, {"tps_min", *mn},
                                    {"tps_max", *mx}, {"ratio_median", median(ratio[f])}, {"samples", tps[f]},
                                    {"cpu_tps_median", median(tps_cpu[f])}, {"cpu_ratio_median", median(ratio_cpu[f])},
                                    {"cpu_samples", tps_cpu[f]},
                                    {"kv_bytes_per_token", kv_bytes[f]}});
        }
        fmt::print("{}\n", j.dump(1));
        return kExitOk;
    }
    fmt::print("tg{} @ d{} x b{}, {} threads, {}, {} rounds after {} warm-up (formats alternated)\n\n", st.n_gen,
               st.depth, st.batch, threads, cpu::isa_name(cpu::active_isa()), st.reps, st.warmup);
    fmt::print("| kv | t/s median | min - max | vs {0} (median of per-round ratios) | t/s per CPU-second | vs {0} (CPU) | KV bytes/token |\n"
               "|---|---|---|---|---|---|---|\n",
               formats[0]);
    for (size_t f = 0; f < nf; ++f) {
        const auto [mn, mx] = std::minmax_element(tps[f].begin(), tps[f].end());
        fmt::print("| {} | {:.2f} | {:.2f} - {:.2f} | {:.2f}x | {:.2f} | {:.2f}x | {:.0f} |\n", formats[f], median(tps[f]),
                   *mn, *mx, median(ratio[f]), median(tps_cpu[f]), median(ratio_cpu[f]), kv_bytes[f]);
    }
    return kExitOk;
}

}  // namespace

Command bench_command() {
    struct State {
        ModelOpts mo;
        int n_prompt = 512, n_gen = 128, reps = 5, warmup = 1, depth = 0, batch = 1;
        bool synthetic = false;
        std::string output = "md";
        std::string kv_compare;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "bench";
    c.summary = "measure prefill (pp) and decode (tg) speed, llama-bench style";
    c.declare = [st](CLI::App* app) {
        add_model_opts(app, st->mo);
        app->add_option("-p,--n-prompt", st->n_prompt, "prompt tokens for the pp test (0 = skip)")->capture_default_str();
        app->add_option("-n,--n-gen", st->n_gen, "generated tokens for the tg test (0 = skip)")->capture_default_str();
        app->add_option("-r,--repetitions", st->reps, "repetitions per test")->capture_default_str();
        app->add_option("--warmup", st->warmup, "untimed rounds before the -r timed ones")->capture_default_str();
        app->add_option("-d,--depth", st->depth, "tokens already in the context before tg")->capture_default_str();
        app->add_option("-o,--output", st->output, "md or json")->capture_default_str();
        app->add_option("-b,--batch", st->batch, "sequences decoded together in tg (one batched step each)")
            ->capture_default_str();
        app->add_option("--kv-compare", st->kv_compare,
                        "comma-separated KV formats: tg only, formats alternated per round, ratios to the first")
            ->capture_default_str();
        app->add_flag("--synthetic-depth", st->synthetic,
                      "fill the -d depth with random K/V instead of a prefill (fast; attention cost is the same)");
    };
    c.run = [st]() -> int {
        if (st->n_prompt < 0) return report("bench", invalid_input("-p: must be >= 0 (got {})", st->n_prompt));
        if (st->n_gen < 0) return report("bench", invalid_input("-n: must be >= 0 (got {})", st->n_gen));
        if (st->reps < 1) return report("bench", invalid_input("-r: must be >= 1 (got {})", st->reps));
        if (st->warmup < 0 || st->warmup > 100)
            return report("bench", invalid_input("--warmup: must be in 0..100 (got {})", st->warmup));
        if (st->depth < 0) return report("bench", invalid_input("-d: must be >= 0 (got {})", st->depth));
        if (st->batch < 1 || st->batch > 256) return report("bench", invalid_input("-b: must be in 1..256 (got {})", st->batch));
        if (st->output != "md" && st->output != "json")
            return report("bench", invalid_input("-o: unknown format \"{}\" (known: md, json)", st->output));
        ModelOpts mo = st->mo;
        if (mo.ctx == 0) mo.ctx = std::max<int64_t>(st->n_prompt, st->depth + st->n_gen) + 1;
        auto l = load(mo);
        if (!l) return report("bench", l.error());
        const int64_t need = std::max<int64_t>(st->n_prompt, st->depth + st->n_gen);
        if (need > l->ctx->n_ctx())
            return report("bench", invalid_input("--ctx: {} tokens needed but the context holds {}", need, l->ctx->n_ctx()));
        const int threads = l->ctx->pool().n_threads();
        std::mt19937 rng(42);
        std::uniform_int_distribution<int32_t> tok(100, int32_t(l->model->hp.n_vocab) - 1);
        auto random_tokens = [&](int n) {
            std::vector<int32_t> v(static_cast<size_t>(n));
            for (auto& t : v) t = tok(rng);
            return v;
        };
        using clock = std::chrono::steady_clock;
        if (!st->kv_compare.empty()) return run_compare(*st, mo, *l, random_tokens);
        std::vector<double> pp, tg;
        std::vector<std::unique_ptr<model::Context>> extra;  // sequences 2..B of the tg test
        for (int rep = -st->warmup; rep < st->reps; ++rep) {  // negative rounds are warm-up
            if (st->n_prompt > 0) {
                l->ctx->truncate(0);
                auto toks = random_tokens(st->n_prompt);
                auto t0 = clock::now();
                auto r = l->ctx->eval(toks);
                if (!r) return report("bench", r.error());
                const double s = std::chrono::duration<double>(clock::now() - t0).count();
                if (rep >= 0) pp.push_back(st->n_prompt / s);
            }
            if (st->n_gen > 0) {
                // B sequences (the first is l->ctx), each at depth d, advance one token per
                // batched step.
                while (int(extra.size()) + 1 < st->batch) {
                    model::ContextParams cp;
                    cp.n_ctx = l->ctx->n_ctx();
                    cp.exact = mo.exact;
                    cp.flash_attn = mo.flash_attn;
                    cp.kv.k = mo.kv_k.empty() ? mo.kv : mo.kv_k;
                    cp.kv.v = mo.kv_v.empty() ? mo.kv : mo.kv_v;
                    cp.pool = &l->ctx->pool();
                    auto c = model::Context::create(*l->model, cp);
                    if (!c) return report("bench", c.error());
                    extra.push_back(std::move(*c));
                }
                std::vector<model::Context*> seqs = {l->ctx.get()};
                for (auto& c : extra) seqs.push_back(c.get());
                for (size_t b = 0; b < seqs.size(); ++b) {
                    seqs[b]->truncate(0);
                    if (st->depth > 0) {
                        Status s = st->synthetic ? seqs[b]->append_synthetic_kv(st->depth, 1000 + b)
                                                 : seqs[b]->eval(random_tokens(st->depth)).status();
                        if (!s) return report("bench", s);
                    }
                }
                std::vector<std::vector<int32_t>> toks;
                for (size_t b = 0; b < seqs.size(); ++b) toks.push_back(random_tokens(st->n_gen));
                std::vector<model::BatchItem> items(seqs.size());
                auto t0 = clock::now();
                for (int i = 0; i < st->n_gen; ++i) {
                    for (size_t b = 0; b < seqs.size(); ++b)
                        items[b] = {seqs[b], std::span<const int32_t>(&toks[b][size_t(i)], 1), false, {}};
                    if (Status s = model::Context::eval_batch(items); !s) return report("bench", s);
                }
                const double s = std::chrono::duration<double>(clock::now() - t0).count();
                if (rep >= 0) tg.push_back(double(st->n_gen) * double(seqs.size()) / s);
            }
        }
        const double bw = measure_bandwidth_gbs(threads);
        const double weight_gb = double(l->model->weight_bytes()) / 1e9;
        const Stat spp = stats(pp), stg = stats(tg);
        const double tg_gbs = stg.mean * weight_gb;
        const std::string mode = mo.numerics;  // "f32" or "q8"
        if (st->output == "json") {
            nlohmann::json j;
            j["model"] = l->model->path;
            j["threads"] = threads;
            j["mode"] = mode;
            j["kv"] = mo.kv_k.empty() && mo.kv_v.empty() ? mo.kv : mo.kv_k + "/" + mo.kv_v;
            j["kv_bytes_per_token"] = l->ctx->n_past() > 0 ? double(l->ctx->kv_cache().bytes()) / double(l->ctx->n_past()) : 0.0;
            j["isa"] = cpu::isa_name(cpu::active_isa());
            j["weight_bytes"] = l->model->weight_bytes();
            j["bandwidth_gbs"] = bw;
            if (!pp.empty()) j["pp"] = {{"n", st->n_prompt}, {"tps_mean", spp.mean}, {"tps_std", spp.stdev}, {"samples", pp}};
            if (!tg.empty())
                j["tg"] = {{"n", st->n_gen}, {"depth", st->depth}, {"batch", st->batch}, {"tps_mean", stg.mean}, {"tps_std", stg.stdev},
                           {"samples", tg}, {"gbs", tg_gbs}, {"bandwidth_share", tg_gbs / bw}};
            fmt::print("{}\n", j.dump(1));
        } else {
            fmt::print("| model | threads | mode | isa | test | t/s |\n|---|---|---|---|---|---|\n");
            if (!pp.empty())
                fmt::print("| {} | {} | {} | {} | pp{} | {:.2f} ± {:.2f} |\n", l->model->path, threads, mode,
                           cpu::isa_name(cpu::active_isa()), st->n_prompt, spp.mean, spp.stdev);
            if (!tg.empty())
                fmt::print("| {} | {} | {} | {} | tg{}{}{} | {:.2f} ± {:.2f} |\n", l->model->path, threads, mode,
                           cpu::isa_name(cpu::active_isa()), st->n_gen,
                           st->depth ? fmt::format(" @ d{}", st->depth) : "",
                           st->batch > 1 ? fmt::format(" x b{}", st->batch) : "", stg.mean, stg.stdev);
            fmt::print("\nweights read per token: {:.1f} MB; measured read bandwidth ({} threads): {:.1f} GB/s\n",
                       weight_gb * 1e3, threads, bw);
            if (!tg.empty())
                fmt::print("decode moves {:.1f} GB/s = {:.0f}% of the measured bandwidth\n", tg_gbs, 100 * tg_gbs / bw);
        }
        return kExitOk;
    };
    return c;
}

}  // namespace strata::cli

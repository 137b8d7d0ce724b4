// `strata fv`: function vectors (docs/function-vectors.md).
//   fv extract  --task T.jsonl --method mean|cie|lrp|random [--heads K] [--layer L] [--distributed] -o T.fv
//   fv build    --stats S.json ...            (a blob from saved head statistics, no model passes)
//   fv eval     --task T.jsonl [--fv F[:S]] [--shots N] [--shuffle] [--layers A-B]  (first-token accuracy)
//   fv info     FILE                          (blob header and entries)
//   fv overhead --fv F [-n N]                 (decode time with and without the vector)
// Extraction always runs in exact mode (f32 activations, dequantized weights) with an fp32
// KV cache: the relevance pass differentiates that forward.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/common.h"
#include "fv/extract.h"
#include "fv/fvec.h"
#include "fv/inject.h"
#include "fv/tasks.h"

namespace strata::cli {

namespace {

void progress_bar(const std::string& phase, int64_t done, int64_t total) {
    static const bool tty = isatty(fileno(stderr));
    const int width = 30;
    const int fill = total > 0 ? int(done * width / total) : width;
    // Without a terminal: one line per tenth of the work.
    static int64_t last_tenth = -1;
    const int64_t tenth = total > 0 ? done * 10 / total : 10;
    if (!tty && (tenth == last_tenth || done == 0)) return;
    last_tenth = done == total ? -1 : tenth;
    fmt::print(stderr, "{}{:<24} [{}{}] {}/{}{}", tty ? "\r" : "", phase, std::string(size_t(fill), '#'),
               std::string(size_t(width - fill), '.'), done, total, tty && done != total ? "" : "\n");
    std::fflush(stderr);
}

Result<fv::ValueType> parse_dtype(const std::string& s) {
    if (s == "f32") return fv::ValueType::kF32;
    if (s == "f16") return fv::ValueType::kF16;
    if (s == "bf16") return fv::ValueType::kBF16;
    return invalid_input("--dtype: '{}' is not one of f32, f16, bf16", s);
}

Result<fv::PositionPolicy> parse_policy(const std::string& s) {
    if (s == "last") return fv::PositionPolicy::kLastPrompt;
    if (s == "last+gen") return fv::PositionPolicy::kLastAndGenerated;
    if (s == "all") return fv::PositionPolicy::kAll;
    return invalid_input("--positions: '{}' is not one of last, last+gen, all", s);
}

struct Common {
    ModelOpts mo;
    std::string task, out, stats_out, stats_in, means_from, method = "lrp", score = "labels", dtype = "f16", positions = "last+gen";
    int heads = 10, layer = -1, prompts = 100, score_prompts = 25, shots = 10, filter_top = 5;
    uint64_t seed = 1;
    float scale = 1.f;
    bool distributed = false;
};

void add_vector_opts(CLI::App* app, Common& c) {
    app->add_option("--method", c.method, "head ranking: mean (all heads, or the K largest), cie, lrp, random")
        ->capture_default_str();
    app->add_option("--score", c.score, "LRP head score: labels (demonstration labels), all (earlier positions), signed")
        ->capture_default_str();
    app->add_option("--heads", c.heads, "number of heads K (mean: 0 = all)")->capture_default_str();
    app->add_option("--layer", c.layer, "injection layer of the aggregated vector (default: n_layer/3)");
    app->add_flag("--distributed", c.distributed, "inject each head's mean output at its own head");
    app->add_option("--dtype", c.dtype, "stored values: f16, f32, bf16")->capture_default_str();
    app->add_option("--positions", c.positions, "positions: last (prompt only), last+gen, all")->capture_default_str();
    app->add_option("--seed", c.seed, "seed (prompts, random heads)")->capture_default_str();
    app->add_option("--scale", c.scale, "scale stored in the blob (multiplies the run-time scale)")->capture_default_str();
    app->add_option("-o,--output", c.out, "output FVEC file")->required();
}

Status finish_blob(const model::Model& m, const Common& c, fv::FunctionVector& v, const std::vector<std::pair<int, int>>& heads) {
    auto pol = parse_policy(c.positions);
    if (!pol) return pol.error();
    v.policy = *pol;
    if (!std::isfinite(c.scale) || std::fabs(c.scale) > 1000.f)
        return invalid_input("--scale: {} must be a finite number in [-1000, 1000]", c.scale);
    v.scale = c.scale;
    STRATA_TRY(fv::save_fvec(c.out, v));
    std::string hs;
    for (size_t i = 0; i < heads.size() && i < 40; ++i) hs += fmt::format("{}L{}H{}", i ? " " : "", heads[i].first, heads[i].second);
    if (heads.size() > 40) hs += fmt::format(" ... ({} heads)", heads.size());
    std::ifstream f(c.out, std::ios::binary | std::ios::ate);
    fmt::print("heads: {}\n", hs);
    fmt::print("wrote {} ({} bytes, {}, {} entr{}, {})\n", c.out, int64_t(f.tellg()),
               v.distributed ? "distributed" : fmt::format("aggregated at layer {}", v.entries[0].layer), v.entries.size(),
               v.entries.size() == 1 ? "y" : "ies", fv::value_type_name(v.dtype));
    (void)m;
    return ok_status();
}

// The flags `fv extract` and `fv build` share, parsed and checked once.
struct Choices {
    fv::Method method;
    fv::LrpScore score;
    fv::ValueType dtype;
};
Result<Choices> parse_choices(const Common& c) {
    auto method = fv::parse_method(c.method);
    if (!method) return method.error();
    auto score = fv::parse_lrp_score(c.score);
    if (!score) return score.error();
    auto dtype = parse_dtype(c.dtype);
    if (!dtype) return dtype.error();
    if (auto p = parse_policy(c.positions); !p) return p.error();
    return Choices{*method, *score, *dtype};
}

int run_extract(Common& c) {
    const char* cmd = "fv extract";
    auto ch = parse_choices(c);
    if (!ch) return report(cmd, ch.error());
    const auto [method, score, dtype] = *ch;
    auto task = fv::load_task(c.task);
    if (!task) return report(cmd, Status(task.error().code(), "--task: " + task.error().message()));
    // LRP and the means run exact with an fp32 cache (the relevance pass differentiates that
    // forward); CIE with --means-from runs in the numerics --exact picks.
    ModelOpts mo = c.mo;
    if (c.means_from.empty()) {
        mo.exact = true;
        mo.kv = "fp32";
        mo.kv_k.clear(), mo.kv_v.clear();
    }
    auto l = load(mo);
    if (!l) return report(cmd, l.error());
    fv::HeadStats means;
    if (!c.means_from.empty()) {
        auto text = read_text_file(c.means_from, "--means-from");
        if (!text) return report(cmd, text.error());
        auto st = fv::stats_from_json(*text, *l->model);
        if (!st) return report(cmd, Status(st.error().code(), "--means-from: " + st.error().message()));
        means = std::move(*st);
    }
    auto id = fv::model_identity(*l->model);
    if (!id) return report(cmd, id.error());
    fv::ExtractParams p;
    p.method = method;
    p.score = score;
    p.heads = c.heads;
    p.layer = c.layer;
    p.distributed = c.distributed;
    p.n_prompts = c.prompts;
    p.n_score_prompts = c.score_prompts;
    p.shots = c.shots;
    p.filter_top = c.filter_top;
    p.seed = c.seed;
    p.dtype = dtype;
    if (!c.means_from.empty()) p.means_from = &means;
    auto r = fv::extract(*l->model, *l->ctx, *l->tokenizer, *task, p, *id, progress_bar);
    if (!r) return report(cmd, r.error());
    const fv::ExtractCost& k = r->cost;
    fmt::print("task {}: {} train / {} test pairs; {}-shot ICL accuracy on the mean prompts {:.1f}%{}\n", task->name,
               task->train.size(), task->test.size(), p.shots, 100 * r->stats.icl_accuracy,
               c.means_from.empty() ? "" : fmt::format(" (means of {} prompts reused from {})", r->stats.n_mean_prompts, c.means_from));
    fmt::print("passes: {} forward, {} patched (CIE), {} relevance (LRP); {} tokens evaluated\n", k.forward_passes,
               k.patched_runs, k.relevance_passes, k.tokens_evaluated);
    fmt::print("cost: {:.0f} forward-pass equivalents; {:.1f} s (forward {:.1f} s, relevance {:.1f} s, patched {:.1f} s)\n",
               k.fpe(), k.seconds, k.forward_seconds, k.relevance_seconds, k.patch_seconds);
    if (!c.stats_out.empty()) {
        std::ofstream f(c.stats_out);
        f << fv::stats_to_json(r->stats, k, task->name);
        if (!f) return report(cmd, io_error("--stats-out: {}: write failed", c.stats_out));
    }
    if (Status s = finish_blob(*l->model, c, r->fv, r->heads); !s) return report(cmd, s);
    return kExitOk;
}

int run_build(Common& c) {
    const char* cmd = "fv build";
    auto ch = parse_choices(c);
    if (!ch) return report(cmd, ch.error());
    const auto [method, score, dtype] = *ch;
    auto l = load(c.mo);
    if (!l) return report(cmd, l.error());
    auto text = read_text_file(c.stats_in, "--stats");
    if (!text) return report(cmd, text.error());
    auto st = fv::stats_from_json(*text, *l->model);
    if (!st) return report(cmd, Status(st.error().code(), "--stats: " + st.error().message()));
    const int L = int(l->model->hp.n_layer);
    const int layer = c.layer < 0 ? L / 3 : c.layer;
    if (layer >= L) return report(cmd, invalid_input("--layer: {} out of range 0..{}", layer, L - 1));
    auto heads = fv::select_heads(*l->model, *st, method, score, c.heads, c.seed);
    if (!heads) return report(cmd, heads.error());
    auto id = fv::model_identity(*l->model);
    if (!id) return report(cmd, id.error());
    std::string task = std::filesystem::path(c.stats_in).stem().string();  // "antonym.lrp" -> "antonym"
    task = task.substr(0, task.find('.'));
    fv::FunctionVector v = fv::build_vector(*l->model, *st, *heads, layer, c.distributed, dtype, *id, task);
    if (Status s = finish_blob(*l->model, c, v, *heads); !s) return report(cmd, s);
    return kExitOk;
}

struct EvalOpts {
    ModelOpts mo;
    std::string task, layers, scales, split = "test";
    int shots = 0, limit = 0;
    bool shuffle = false, json = false;
    int show = 0;
    uint64_t seed = 7;
};

int run_eval(EvalOpts& e) {
    const char* cmd = "fv eval";
    auto task = fv::load_task(e.task);
    if (!task) return report(cmd, Status(task.error().code(), "--task: " + task.error().message()));
    if (e.shots < 0 || e.shots > 64) return report(cmd, invalid_input("--shots: {} out of range 0..64", e.shots));
    if (e.limit < 0) return report(cmd, invalid_input("--limit: must be >= 0"));
    if (e.split != "test" && e.split != "train") return report(cmd, invalid_input("--split: '{}' is not test or train", e.split));
    ModelOpts mo = e.mo;
    const std::vector<std::string> fv_args = mo.fv;
    mo.fv.clear();
    auto l = load(mo);
    if (!l) return report(cmd, l.error());
    const auto& hp = l->model->hp;
    // Vectors, loaded once.
    std::vector<std::pair<std::shared_ptr<fv::FunctionVector>, float>> vecs;
    if (!fv_args.empty()) {
        auto id = fv::model_identity(*l->model);
        if (!id) return report(cmd, id.error());
        for (const auto& a : fv_args) {
            auto spec = fv::parse_fv_spec(a);
            if (!spec) return report(cmd, spec.error());
            auto v = fv::load_fvec(spec->path, *id);
            if (!v) return report(cmd, Status(v.error().code(), "--fv: " + v.error().message()));
            vecs.emplace_back(std::make_shared<fv::FunctionVector>(std::move(*v)), spec->scale);
        }
    }
    // Layer sweep (aggregated vectors: the injection layer is overridden).
    std::vector<int> layers{-1};
    if (!e.layers.empty()) {
        int a = 0, b = 0;
        if (std::sscanf(e.layers.c_str(), "%d-%d", &a, &b) != 2 || a < 0 || b < a || b >= hp.n_layer)
            return report(cmd, invalid_input("--layers: '{}' is not A-B within 0..{}", e.layers, hp.n_layer - 1));
        if (vecs.empty()) return report(cmd, invalid_input("--layers: needs --fv"));
        for (auto& [v, s] : vecs)
            if (v->distributed) return report(cmd, invalid_input("--layers: only aggregated vectors can move layers"));
        layers.clear();
        for (int x = a; x <= b; ++x) layers.push_back(x);
    }
    // Scale sweep: multiplies every vector's scale.
    std::vector<float> scales{1.f};
    if (!e.scales.empty()) {
        scales.clear();
        std::stringstream ss(e.scales);
        std::string item;
        while (std::getline(ss, item, ',')) {
            auto sp = fv::parse_fv_spec("x:" + item);
            if (!sp || sp->path != "x") return report(cmd, invalid_input("--scales: '{}' is not a comma-separated list of numbers", e.scales));
            scales.push_back(sp->scale);
        }
        if (vecs.empty()) return report(cmd, invalid_input("--scales: needs --fv"));
    }
    const auto& pool = e.split == "test" ? task->test : task->train;
    const size_t n = e.limit > 0 ? std::min(pool.size(), size_t(e.limit)) : pool.size();
    std::string fv_names;
    for (const auto& a : fv_args) fv_names += (fv_names.empty() ? "" : ",") + a;
    for (float mult : scales)
    for (int layer : layers) {
        fv::FvHook hook(*l->model);
        for (auto& [v, s] : vecs) {
            auto copy = std::make_shared<fv::FunctionVector>(*v);
            if (layer >= 0)
                for (auto& en : copy->entries) en.layer = layer;
            if (Status st = hook.add(copy, s * mult); !st) return report(cmd, st);
        }
        l->ctx->clear_hooks();
        if (!hook.empty()) hook.attach(*l->ctx);
        int64_t correct = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (size_t i = 0; i < n; ++i) {
            std::mt19937_64 rng(e.seed * 1000003 + i);
            const auto demos = fv::sample_demos(task->train, pool[i], e.shots, e.shuffle, rng);
            const fv::Prompt pr = fv::build_prompt(*l->tokenizer, demos, pool[i]);
            l->ctx->truncate(0);
            hook.reset();
            auto lg = l->ctx->eval(pr.tokens);
            if (!lg) return report(cmd, lg.error());
            const auto best = std::max_element(lg->begin(), lg->end()) - lg->begin();
            if (best == pr.target) ++correct;
            if (int(i) < e.show)
                fmt::print("  {} -> want '{}' got '{}'\n", pool[i].input, l->tokenizer->token_to_piece(pr.target),
                           l->tokenizer->token_to_piece(int32_t(best)));
        }
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double acc = n ? double(correct) / double(n) : 0.0;
        if (e.json)
            fmt::print("{{\"task\": \"{}\", \"split\": \"{}\", \"shots\": {}, \"shuffle\": {}, \"fv\": \"{}\", \"layer\": {}, "
                       "\"scale\": {}, \"n\": {}, \"correct\": {}, \"accuracy\": {:.4f}, \"seconds\": {:.2f}}}\n",
                       task->name, e.split, e.shots, e.shuffle, fv_names, layer, mult, n, correct, acc, secs);
        else
            fmt::print("{} {}-shot{}{}{}{}: {:.1f}% ({}/{})\n", task->name, e.shots, e.shuffle ? " shuffled" : "",
                       fv_names.empty() ? "" : " + " + fv_names, layer >= 0 ? fmt::format(" @layer {}", layer) : "",
                       mult != 1.f ? fmt::format(" x{}", mult) : "", 100 * acc, correct, n);
    }
    return kExitOk;
}

int run_info(const std::string& path) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return report("fv info", not_found("{}: cannot open", path));
    const auto size = f.tellg();
    if (size < 0 || size > (64 << 20)) return report("fv info", invalid_input("{}: size out of range", path));
    std::vector<uint8_t> buf(static_cast<size_t>(size));
    f.seekg(0);
    f.read(reinterpret_cast<char*>(buf.data()), size);
    auto v = fv::parse_fvec(buf);
    if (!v) return report("fv info", v.error().with_context(path));
    fmt::print("{}: FVEC v1, {} bytes, {}\n", path, buf.size(), v->distributed ? "distributed" : "aggregated");
    fmt::print("  task: {}\n  model hash: {}\n  model: hidden {}, {} layers, {} heads x {}\n", v->task.empty() ? "-" : v->task,
               fv::hex(v->model_hash), v->hidden_size, v->n_layers, v->n_heads, v->head_dim);
    fmt::print("  dtype {}, positions {}, hook point {}, scale {}\n  id {}\n", fv::value_type_name(v->dtype),
               fv::policy_name(v->policy), v->hook_point == fv::HookPoint::kBlockOutput ? "block output" : "attention output",
               v->scale, v->id);
    for (const auto& e : v->entries) {
        double norm = 0;
        for (float x : e.values) norm += double(x) * double(x);
        if (v->distributed)
            fmt::print("  layer {:2} head {:2}: |abar| = {:.3f}{}\n", e.layer, e.head, std::sqrt(norm),
                       v->has_scores ? fmt::format(", score {}", e.score) : "");
        else
            fmt::print("  layer {:2}: |v| = {:.3f}\n", e.layer, std::sqrt(norm));
    }
    return kExitOk;
}

int run_overhead(ModelOpts& mo, int n_tokens, int rounds) {
    const char* cmd = "fv overhead";
    if (mo.fv.empty()) return report(cmd, invalid_input("--fv: required"));
    if (n_tokens < 8 || n_tokens > 4096) return report(cmd, invalid_input("-n: {} out of range 8..4096", n_tokens));
    auto l = load(mo);
    if (!l) return report(cmd, l.error());
    const auto prompt = l->tokenizer->encode("Q: hot\nA:", true, false);
    std::vector<double> with, without;
    for (int r = 0; r < 2 * rounds; ++r) {
        const bool on = r % 2 == 1;
        l->ctx->clear_hooks();
        if (on) l->fv_hook->attach(*l->ctx);
        l->ctx->truncate(0);
        auto lg = l->ctx->eval(prompt);
        if (!lg) return report(cmd, lg.error());
        int32_t t = int32_t(std::max_element(lg->begin(), lg->end()) - lg->begin());
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n_tokens; ++i) {
            auto next = l->ctx->eval(std::span<const int32_t>(&t, 1));
            if (!next) return report(cmd, next.error());
            t = int32_t(std::max_element(next->begin(), next->end()) - next->begin());
        }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n_tokens;
        (on ? with : without).push_back(ms);
    }
    std::sort(with.begin(), with.end());
    std::sort(without.begin(), without.end());
    const double a = without[without.size() / 2], b = with[with.size() / 2];
    fmt::print("decode: {:.3f} ms/token without, {:.3f} ms/token with the vector (medians of {} runs of {} tokens): {:+.2f}%\n",
               a, b, rounds, n_tokens, 100 * (b - a) / a);
    return kExitOk;
}

}  // namespace

Command fv_command() {
    struct State {
        Common ex, bd;
        EvalOpts ev;
        std::string info_path;
        ModelOpts ov;
        int ov_n = 128, ov_rounds = 5;
        CLI::App *extract = nullptr, *build = nullptr, *eval = nullptr, *info = nullptr, *overhead = nullptr;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "fv";
    c.summary = "function vectors: extract, build, evaluate, inspect";
    c.declare = [st](CLI::App* app) {
        app->require_subcommand(1);
        st->extract = app->add_subcommand("extract", "extract a function vector from a task file");
        add_model_opts(st->extract, st->ex.mo);
        st->extract->add_option("--task", st->ex.task, "task file (JSON lines of {\"input\", \"output\"})")->required();
        add_vector_opts(st->extract, st->ex);
        st->extract->add_option("--prompts", st->ex.prompts, "clean prompts for the mean head outputs")->capture_default_str();
        st->extract->add_option("--score-prompts", st->ex.score_prompts, "prompts scored by CIE or LRP")->capture_default_str();
        st->extract->add_option("--shots", st->ex.shots, "demonstrations per prompt")->capture_default_str();
        st->extract->add_option("--filter-top", st->ex.filter_top,
                                "LRP: score only prompts whose answer is in the top K (0 = all)")->capture_default_str();
        st->extract->add_option("--stats-out", st->ex.stats_out, "write head statistics (means, scores, cost) as JSON");
        st->extract->add_option("--means-from", st->ex.means_from,
                                "reuse the mean head outputs of an earlier --stats-out (CIE; runs in --exact or default numerics)");

        st->build = app->add_subcommand("build", "build a blob from saved head statistics (no model passes)");
        add_model_opts(st->build, st->bd.mo);
        st->build->add_option("--stats", st->bd.stats_in, "head statistics from fv extract --stats-out")->required();
        add_vector_opts(st->build, st->bd);

        st->eval = app->add_subcommand("eval", "first-token accuracy on a task's test pairs");
        add_model_opts(st->eval, st->ev.mo);
        add_fv_opts(st->eval, st->ev.mo);
        st->eval->add_option("--task", st->ev.task, "task file")->required();
        st->eval->add_option("--shots", st->ev.shots, "demonstrations (0 = zero-shot)")->capture_default_str();
        st->eval->add_flag("--shuffle", st->ev.shuffle, "permute the demonstration labels");
        st->eval->add_option("--layers", st->ev.layers, "sweep the injection layer A-B (aggregated vectors)");
        st->eval->add_option("--scales", st->ev.scales, "sweep a scale multiplier, e.g. 1,2,3");
        st->eval->add_option("--limit", st->ev.limit, "at most this many queries (0 = all)")->capture_default_str();
        st->eval->add_option("--split", st->ev.split, "test or train")->capture_default_str();
        st->eval->add_option("--seed", st->ev.seed, "demonstration sampling seed")->capture_default_str();
        st->eval->add_flag("--json", st->ev.json, "one JSON line per result");
        st->eval->add_option("--show", st->ev.show, "print the first N queries with wanted and predicted tokens");

        st->info = app->add_subcommand("info", "print a blob's header and entries");
        st->info->add_option("file", st->info_path, "FVEC file")->required();

        st->overhead = app->add_subcommand("overhead", "decode time with and without --fv");
        add_model_opts(st->overhead, st->ov);
        add_fv_opts(st->overhead, st->ov);
        st->overhead->add_option("-n", st->ov_n, "tokens per run")->capture_default_str();
        st->overhead->add_option("--rounds", st->ov_rounds, "runs each way")->capture_default_str();
    };
    c.run = [st]() -> int {
        if (st->extract->parsed()) return run_extract(st->ex);
        if (st->build->parsed()) return run_build(st->bd);
        if (st->eval->parsed()) return run_eval(st->ev);
        if (st->info->parsed()) return run_info(st->info_path);
        if (st->overhead->parsed()) {
            if (st->ov_rounds < 1 || st->ov_rounds > 100) return report("fv overhead", invalid_input("--rounds: out of range 1..100"));
            return run_overhead(st->ov, st->ov_n, st->ov_rounds);
        }
        return kExitUsage;
    };
    return c;
}

}  // namespace strata::cli

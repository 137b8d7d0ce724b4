// `strata merge`: combines LoRA adapters into one standard rank-r LoRA with a registered
// method (adapters/registry.cpp) and writes it as a PEFT directory plus OUT/adapter.gguf
// (or only a GGUF file when OUT ends in .gguf). TaDA takes the task adapter first and the
// domain adapter second; its probe runs the base model (-m) on --calib prompts.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "adapters/gates.h"
#include "adapters/load.h"
#include "adapters/merge.h"
#include "cli/common.h"

namespace strata::cli {

namespace {

Result<std::vector<double>> parse_weights(const std::string& s) {
    std::vector<double> w;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        char* end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        if (item.empty() || !end || *end != '\0' || !std::isfinite(v))
            return invalid_input("--weights: \"{}\" is not a number", item);
        w.push_back(v);
    }
    return w;
}

// Calibration prompts: JSONL with a "text" field per line, or plain text, one prompt a line.
Result<std::vector<std::vector<int32_t>>> read_calib(const std::string& path, const Tokenizer& tok) {
    std::ifstream f(path);
    if (!f) return not_found("--calib: {}: cannot open", path);
    std::vector<std::vector<int32_t>> out;
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty()) continue;
        std::string text = line;
        if (line[0] == '{') {
            auto j = nlohmann::json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.contains("text") || !j["text"].is_string())
                return invalid_input("--calib: {}: JSON lines need a \"text\" string", path);
            text = j["text"].get<std::string>();
        }
        out.push_back(tok.encode(text, false, true));
    }
    if (out.empty()) return invalid_input("--calib: {}: no prompts", path);
    return out;
}

void progress_bar(int64_t done, int64_t total) {
    const int width = 30, fill = int(width * done / std::max<int64_t>(total, 1));
    // Redraw only when the bar grows (and at the end), not once per module.
    if (done != total && fill == int(width * (done - 1) / std::max<int64_t>(total, 1))) return;
    fmt::print(stderr, "\rmerge [{}{}] {}/{}", std::string(size_t(fill), '#'), std::string(size_t(width - fill), ' '),
               done, total);
    if (done == total) fmt::print(stderr, "\n");
}

Status write_gates(const std::string& path, const adapters::Gates& g) {
    std::ofstream o(path);
    if (!o) return io_error("--gates-out: {}: cannot create", path);
    o << "layer\tproj\tp_task\tp_domain\tg_task\tg_domain\n";
    for (int64_t l = 0; l < g.n_layer; ++l)
        for (int r = 0; r < adapters::kNumRoles; ++r) {
            const size_t k = size_t(l * adapters::kNumRoles + r);
            const double pt = g.p_t.empty() ? NAN : g.p_t[k], pd = g.p_d.empty() ? NAN : g.p_d[k];
            o << fmt::format("{}\t{}\t{:.6g}\t{:.6g}\t{:.4f}\t{:.4f}\n", l, model::weight_role_name(adapters::kRoles[r]),
                             pt, pd, g.g_t[k], g.g_d[k]);
        }
    return ok_status();
}

struct State {
    ModelOpts mo;
    std::string method = "linear", weights, calib, out, gates_out, probe = "normalized";
    std::vector<std::string> adapters_in;
    adapters::MergeOptions opt;
    bool no_center = false, f16 = false, quiet = false;
};

Status run_merge(State& st) {
    auto method = adapters::make_merge_method(st.method);
    if (!method) return method.error();
    if (!st.weights.empty()) {
        auto w = parse_weights(st.weights);
        if (!w) return w.error();
        st.opt.weights = *w;
    }
    if (st.probe != "normalized" && st.probe != "global_calibrated")
        return invalid_input("--probe: unknown probe \"{}\" (known: normalized, global_calibrated)", st.probe);
    st.opt.probe_global = st.probe == "global_calibrated";
    st.opt.center = !st.no_center;
    if (st.opt.smooth_window < 1) return invalid_input("--smooth: must be >= 1 (got {})", st.opt.smooth_window);
    STRATA_TRY((*method)->check(st.opt, st.adapters_in.size()));
    if (st.mo.ctx == 0) st.mo.ctx = 256;  // only the TaDA probe runs the model, on short prompts
    auto l = load(st.mo);
    if (!l) return l.error();
    const adapters::ModelShape shape = adapters::model_shape(*l->model);
    std::vector<adapters::LoraAdapter> ads;
    for (const auto& p : st.adapters_in) {
        auto a = adapters::load_adapter(p, shape);
        if (!a) return a.error();
        ads.push_back(std::move(*a));
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<adapters::Gates> gates;
    if ((*method)->needs_gates()) {
        if (st.opt.tada_mode == "ramp" || st.opt.tada_mode == "subspace_only") {
            gates = adapters::ramp_gates(shape.n_layer, st.opt.g_max);
        } else {
            if (st.calib.empty()) return invalid_input("--calib: tada mode {} needs calibration prompts", st.opt.tada_mode);
            auto prompts = read_calib(st.calib, *l->tokenizer);
            if (!prompts) return prompts.error();
            auto sums = adapters::run_probe(*l->ctx, ads[0], ads[1], *prompts);
            if (!sums) return sums.error();
            gates = adapters::probe_gates(*sums, ads[0], ads[1], st.opt);
        }
        if (!st.gates_out.empty()) STRATA_TRY(write_gates(st.gates_out, *gates));
    }
    adapters::MergeStats stats;
    auto merged = adapters::merge_adapters(**method, ads, shape, st.opt, gates ? &*gates : nullptr, l->ctx->pool(),
                                           st.quiet ? adapters::ProgressFn() : adapters::ProgressFn(progress_bar), &stats);
    if (!merged) return merged.error();
    STRATA_TRY(adapters::save_adapter(st.out, *merged, shape, st.f16));
    const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(stderr, "merged {} modules with {} in {:.2f} s, {:.2f} s with probe and writing (rank {}, kept energy mean {:.4f}, min {:.4f}{}) -> {}\n",
               stats.modules, st.method, stats.seconds, total_s, merged->max_rank(), stats.mean_kept_energy,
               stats.min_kept_energy,
               st.method == "tada" ? fmt::format(", {} components dropped", stats.dropped_components) : "", st.out);
    return ok_status();
}

}  // namespace

Command merge_command() {
    auto st = std::make_shared<State>();
    Command c;
    c.name = "merge";
    c.summary = "merge LoRA adapters into one rank-r LoRA (linear, task_arithmetic, ties, dare, dare_ties, tada)";
    c.declare = [st](CLI::App* app) {
        add_model_opts(app, st->mo);
        auto& o = st->opt;
        app->add_option("--method", st->method, "merge method: linear, task_arithmetic, ties, dare, dare_ties, tada")
            ->capture_default_str();
        app->add_option("--adapter", st->adapters_in, "input adapter (PEFT dir or .gguf); repeat; tada: task then domain")
            ->required();
        app->add_option("--weights", st->weights, "comma-separated weight per adapter (default: the method's)");
        app->add_option("--density", o.density, "TIES/DARE keep fraction (default 0.2 for ties, 0.5 for dare*)");
        app->add_option("--lambda", o.lambda, "global multiplier on the merged update")->capture_default_str();
        app->add_option("--rank", o.rank, "output rank (default: the largest input rank)");
        app->add_option("--seed", o.seed, "seed for DARE masks and the randomized SVD")->capture_default_str();
        app->add_option("--calib", st->calib, "TaDA calibration prompts (JSONL with \"text\", or one per line)");
        app->add_option("--tada-mode", o.tada_mode, "full, gating_only, subspace_only, ramp, full_dense")->capture_default_str();
        app->add_option("--kappa", o.kappa, "TaDA conflict threshold")->capture_default_str();
        app->add_option("--gmax", o.g_max, "TaDA gate bound")->capture_default_str();
        app->add_option("--smooth", o.smooth_window, "TaDA depth smoothing window (1 = off)")->capture_default_str();
        app->add_option("--probe", st->probe, "TaDA probe: normalized or global_calibrated")->capture_default_str();
        app->add_flag("--no-center", st->no_center, "TaDA: no median centring of the probe log-ratio");
        app->add_option("--gates-out", st->gates_out, "TaDA: write the probe and gate table (TSV)");
        app->add_flag("--exact-svd", o.exact_svd, "full BDCSVD for dense merges (slow) instead of the randomized one");
        app->add_flag("--dare-l1", o.dare_l1_rescale, "DARE: mergekit's L1 rescale instead of 1/density");
        app->add_flag("--peft-ties", o.peft_ties, "TIES/DARE-TIES with PEFT semantics (unweighted sign, divide by count)");
        app->add_flag("--f16", st->f16, "write F16 tensors (default F32)");
        app->add_flag("-q,--quiet", st->quiet, "no progress bar");
        app->add_option("-o,--out", st->out, "output: PEFT directory (plus adapter.gguf inside) or a .gguf file")->required();
    };
    c.run = [st]() -> int { return report("merge", run_merge(*st)); };
    return c;
}

}  // namespace strata::cli

// Option declarations and model loading shared by subcommands.
#include "cli/common.h"

#include <fmt/format.h>

#include <thread>

namespace strata::cli {

void add_model_opts(CLI::App* app, ModelOpts& o) {
    app->add_option("-m,--model", o.model, "model file (.gguf); default: the default model in models/");
    app->add_option("-t,--threads", o.threads, "CPU threads (default: all cores)");
    app->add_option("--ctx", o.ctx, "context size in tokens (default: the model's)");
    app->add_flag("--exact", o.exact, "f32 activations and dequantized weights (reference numerics)");
    app->add_option("--kv-type", o.kv_type, "KV cache element type: f16 (default) or f32");
}

void add_sampling_opts(CLI::App* app, sampling::SamplingParams& p) {
    app->add_option("--temp", p.temperature, "temperature; 0 = greedy")->capture_default_str();
    app->add_option("--top-k", p.top_k, "top-k; 0 = off")->capture_default_str();
    app->add_option("--top-p", p.top_p, "top-p (nucleus); 1 = off")->capture_default_str();
    app->add_option("--min-p", p.min_p, "min-p; 0 = off")->capture_default_str();
    app->add_option("--repeat-penalty", p.repeat_penalty, "repetition penalty; 1 = off")->capture_default_str();
    app->add_option("--repeat-last-n", p.repeat_last_n, "tokens the penalty looks back over")->capture_default_str();
    app->add_option("--seed", p.seed, "RNG seed (default: random)");
}

Result<Loaded> load(const ModelOpts& o) {
    if (o.threads < 0 || o.threads > 256) return invalid_input("--threads: must be in 1..256 (got {})", o.threads);
    if (o.ctx < 0) return invalid_input("--ctx: must be positive (got {})", o.ctx);
    if (o.kv_type != "f16" && o.kv_type != "f32")
        return invalid_input("--kv-type: unknown type \"{}\" (known: f16, f32)", o.kv_type);
    const std::string path = o.model.empty() ? engine::default_model_path() : o.model;
    Loaded l;
    auto m = model::load_model(path);
    if (!m) return m.error();
    l.model = std::move(*m);
    auto t = Tokenizer::from_gguf(*l.model->file);
    if (!t) return t.error().with_context(path);
    l.tokenizer = std::move(*t);
    model::ContextParams cp;
    cp.n_ctx = o.ctx;
    cp.n_threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    cp.exact = o.exact;
    cp.kv_f16 = o.kv_type == "f16";
    auto c = model::Context::create(*l.model, cp);
    if (!c) {
        // Context limits are the user's flags.
        if (c.error().code() == ErrorCode::kOutOfRange || c.error().code() == ErrorCode::kInvalidInput)
            return Status(ErrorCode::kInvalidInput, "--ctx: " + c.error().message());
        return c.error();
    }
    l.ctx = std::move(*c);
    return l;
}

int report(const std::string& cmd, const Status& s) {
    if (s.ok()) return kExitOk;
    fmt::print(stderr, "strata {}: {}\n", cmd, s.message());
    return s.code() == ErrorCode::kInvalidInput && s.message().rfind("-", 0) == 0 ? kExitUsage : kExitRuntime;
}

void print_timings(const engine::GenerateStats& st) {
    fmt::print(stderr, "\nprefill: {} tokens in {:.1f} ms ({:.1f} tokens/s)\n", st.n_prompt, st.prefill_ms,
               st.prefill_tps());
    fmt::print(stderr, "decode:  {} tokens in {:.1f} ms ({:.1f} tokens/s)  [stop: {}]\n", st.n_generated,
               st.decode_ms, st.decode_tps(), st.stop_reason);
}

}  // namespace strata::cli

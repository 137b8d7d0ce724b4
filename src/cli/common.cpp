// Option declarations and model loading shared by subcommands.
#include "cli/common.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <thread>

#include "adapters/load.h"
#include "adapters/runtime.h"

namespace strata::cli {

void add_model_opts(CLI::App* app, ModelOpts& o) {
    app->add_option("-m,--model", o.model, "model file (.gguf); default: the default model in models/");
    app->add_option("-t,--threads", o.threads, "CPU threads (default: all cores)");
    app->add_option("--ctx", o.ctx, "context size in tokens (default: the model's)");
    app->add_option_function<std::string>(
           "--numerics",
           [&o](const std::string& v) {
               o.numerics = v;
               o.exact = v == "f32";
           },
           "f32 (default): f32 activations on the dequantized weights, the accurate computation of the "
           "quantized model | q8: llama.cpp's 8-bit activation scheme, bit-identical to llama.cpp's CPU path")
        ->check(CLI::IsMember({"f32", "q8"}));
    app->add_option_function<std::string>(
           "--flash-attn", [&o](const std::string& v) { o.flash_attn = v == "on"; },
           "with --numerics q8: on (default) reproduces llama.cpp's flash-attention op (its CPU default), "
           "off its separate KQ/softmax/KQV ops (llama.cpp -fa off); the f32 mode has one attention")
        ->check(CLI::IsMember({"on", "off"}));
    // Before f32 became the default, --exact selected it; kept so existing scripts run.
    app->add_flag_callback("--exact", [&o] { o.exact_flag = true; }, "same as --numerics f32")->group("");
    app->add_option("--kv", o.kv, "KV cache format for K and V (fp16 default; see docs/kv-cache.md)");
    app->add_option("--kv-k", o.kv_k, "K cache format, overriding --kv (per-token formats only)");
    app->add_option("--kv-v", o.kv_v, "V cache format, overriding --kv (per-token formats only)");
    app->add_option("--lora", o.lora, "LoRA adapter FILE[:SCALE] (PEFT dir or .gguf) applied at run time; repeatable");
}

void add_fv_opts(CLI::App* app, ModelOpts& o) {
    app->add_option("--fv", o.fv, "function vector FILE[:SCALE] (FVEC blob from `strata fv extract`); repeatable");
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

// Loads every --lora adapter, checks it against the model and hooks it into the context.
static Status apply_loras(const ModelOpts& o, Loaded& l) {
    if (o.lora.empty()) return ok_status();
    const adapters::ModelShape shape = adapters::model_shape(*l.model);
    auto hook = std::make_unique<adapters::LoraHook>(l.model->hp.n_layer);
    for (const std::string& arg : o.lora) {
        auto spec = adapters::parse_lora_spec(arg);
        if (!spec) return spec.error();
        auto ad = adapters::load_adapter(spec->path, shape);
        if (!ad) return ad.error();
        hook->add(std::make_shared<const adapters::LoraAdapter>(std::move(*ad)), spec->scale);
    }
    l.ctx->add_matmul_hook(hook.get());
    l.lora_hook = std::move(hook);
    return ok_status();
}

// Loads every --fv blob (checked against this model's hash and shape) into one hook.
static Status apply_fvs(const ModelOpts& o, Loaded& l) {
    if (o.fv.empty()) return ok_status();
    auto id = fv::model_identity(*l.model);
    if (!id) return id.error();
    auto hook = std::make_unique<fv::FvHook>(*l.model);
    for (const std::string& arg : o.fv) {
        auto spec = fv::parse_fv_spec(arg);
        if (!spec) return spec.error();
        auto v = fv::load_fvec(spec->path, *id);
        if (!v) return Status(v.error().code(), "--fv: " + v.error().message());
        STRATA_TRY(hook->add(std::make_shared<const fv::FunctionVector>(std::move(*v)), spec->scale));
    }
    hook->attach(*l.ctx);
    l.fv_hook = std::move(hook);
    return ok_status();
}

Result<Loaded> load(const ModelOpts& o) {
    if (o.exact_flag && o.numerics == "q8")
        return invalid_input("--exact: conflicts with --numerics q8 (--exact is the old name of --numerics f32)");
    if (o.threads < 0 || o.threads > 256) return invalid_input("--threads: must be in 1..256 (got {})", o.threads);
    if (o.ctx < 0) return invalid_input("--ctx: must be positive (got {})", o.ctx);
    for (auto [flag, name] : {std::pair{"--kv", &o.kv}, {"--kv-k", &o.kv_k}, {"--kv-v", &o.kv_v}})
        if (!name->empty())
            if (auto m = kv::make_kv_method(*name); !m) return Status(m.error().code(), fmt::format("{}: {}", flag, m.error().message()));
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
    cp.flash_attn = o.flash_attn;
    cp.kv.k = o.kv_k.empty() ? o.kv : o.kv_k;
    cp.kv.v = o.kv_v.empty() ? o.kv : o.kv_v;
    auto c = model::Context::create(*l.model, cp);
    if (!c) {
        // A format that cannot take this model's heads, or K/V formats that cannot mix.
        if (c.error().message().rfind("kv ", 0) == 0 || c.error().message().rfind("K and V", 0) == 0)
            return Status(ErrorCode::kInvalidInput, "--kv: " + c.error().message());
        // Context limits are the user's flags.
        if (c.error().code() == ErrorCode::kOutOfRange || c.error().code() == ErrorCode::kInvalidInput)
            return Status(ErrorCode::kInvalidInput, "--ctx: " + c.error().message());
        return c.error();
    }
    l.ctx = std::move(*c);
    STRATA_TRY(apply_loras(o, l));
    STRATA_TRY(apply_fvs(o, l));
    return l;
}

void log_softmax(const float* lg, int64_t V, std::vector<double>& out) {
    out.resize(size_t(V));
    double mx = lg[0];
    for (int64_t v = 1; v < V; ++v) mx = std::max(mx, double(lg[v]));
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(double(lg[v]) - mx);
    const double lse = mx + std::log(z);
    for (int64_t v = 0; v < V; ++v) out[size_t(v)] = double(lg[v]) - lse;
}

Result<std::string> read_text_file(const std::string& path, const char* flag) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        return Status(e == ENOENT || e == ENOTDIR ? ErrorCode::kNotFound : ErrorCode::kIo,
                      fmt::format("{}: {}: cannot open: {}", flag, path, std::strerror(e)));
    }
    struct Fd {
        int fd;
        ~Fd() { ::close(fd); }
    } guard{fd};
    struct stat sb {};
    const bool have_stat = ::fstat(fd, &sb) == 0;
    if (have_stat && S_ISDIR(sb.st_mode)) return io_error("{}: {}: is a directory", flag, path);
    std::string text;
    if (have_stat && S_ISREG(sb.st_mode) && sb.st_size > 0) text.reserve(size_t(sb.st_size));
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error("{}: {}: read failed: {}", flag, path, std::strerror(errno));
        }
        text.append(buf, size_t(n));
    }
    if (text.empty()) return io_error("{}: {}: file is empty", flag, path);
    return text;
}

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    for (size_t b = 0; b <= s.size();) {
        const size_t e = std::min(s.find(',', b), s.size());
        if (e > b) out.push_back(s.substr(b, e - b));
        b = e + 1;
    }
    return out;
}

void add_chat_template_opt(CLI::App* app, std::string& name) {
    app->add_option("--chat-template", name,
                    fmt::format("chat format ({}); default: from the model file", chat_template_names()));
}

Result<ChatTemplate> resolve_chat_template(const std::string& name, const Tokenizer& tok) {
    if (name.empty()) return chat_template_for(tok.vocab());
    auto t = chat_template_by_name(name);
    if (!t) return invalid_input("--chat-template: {}", t.error().message());
    return t;
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

// `strata serve`: the OpenAI-compatible HTTP server (src/server) over the engine.
#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include "cli/common.h"
#include "cli/serve_hooks.h"
#include "engine/engine.h"
#include "server/server.h"
#include "tokenizer/chat_template.h"

namespace strata::cli {

namespace {
// The handler only sets a flag (async-signal-safe); a watcher thread stops the server.
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

Command serve_command() {
    struct State {
        ModelOpts mo;
        server::ServerOptions so;
        int parallel = 4;
        double kv_budget_mb = 0;
        int64_t max_queue = 64;
        int64_t max_body_kb = 1024;
        std::string chat_template;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "serve";
    c.summary = "OpenAI-compatible HTTP server with continuous batching";
    c.declare = [st](CLI::App* app) {
        add_model_opts(app, st->mo);
        add_chat_template_opt(app, st->chat_template);
        add_fv_opts(app, st->mo);
        app->add_option("--host", st->so.host, "address to listen on")->capture_default_str();
        app->add_option("--port", st->so.port, "port (0 = any free port)")->capture_default_str();
        app->add_option("--parallel", st->parallel, "sequences decoded concurrently")->capture_default_str();
        app->add_option("--kv-budget-mb", st->kv_budget_mb, "KV cache budget in MiB (0 = parallel x ctx)");
        app->add_option("--max-queue", st->max_queue, "queued requests before answering 429")->capture_default_str();
        app->add_option("--api-key", st->so.api_key, "require 'Authorization: Bearer KEY' on every route but /health");
        app->add_flag("--public-metrics", st->so.public_metrics, "serve /metrics without the API key");
        app->add_option("--http-threads", st->so.http_threads, "HTTP worker threads (connections served at once)")
            ->capture_default_str();
        app->add_option("--timeout", st->so.timeout_s, "overall deadline per request in seconds")->capture_default_str();
        app->add_option("--max-body-kb", st->max_body_kb, "request body limit in KiB, after decompression")
            ->capture_default_str();
        app->add_option("--cors-origin", st->so.cors_origin, "allow browser requests from this origin ('*' = any)");
        app->add_option("--model-name", st->so.model_name, "model id reported by the API")->capture_default_str();
    };
    c.run = [st]() -> int {
        if (st->so.port < 0 || st->so.port > 65535)
            return report("serve", invalid_input("--port: must be in 0..65535 (got {})", st->so.port));
        if (st->kv_budget_mb < 0) return report("serve", invalid_input("--kv-budget-mb: must be >= 0"));
        if (st->max_queue < 1) return report("serve", invalid_input("--max-queue: must be >= 1"));
        if (st->so.http_threads < 1 || st->so.http_threads > 1024)
            return report("serve", invalid_input("--http-threads: must be in 1..1024 (got {})", st->so.http_threads));
        if (!(st->so.timeout_s > 0 && st->so.timeout_s <= 86400))
            return report("serve", invalid_input("--timeout: must be in (0, 86400] seconds (got {})", st->so.timeout_s));
        if (st->max_body_kb < 1 || st->max_body_kb > 1024 * 1024)
            return report("serve", invalid_input("--max-body-kb: must be in 1..1048576 (got {})", st->max_body_kb));
        st->so.max_body_bytes = size_t(st->max_body_kb) * 1024;
        ModelOpts mo = st->mo;
        if (mo.ctx == 0) mo.ctx = 16;  // the per-request contexts live in the engine
        mo.lora.clear();               // adapters and vectors are per request (ServeHooks)
        mo.fv.clear();
        auto l = load(mo);
        if (!l) return report("serve", l.error());
        auto hooks = ServeHooks::load(*l->model, st->mo.lora, st->mo.fv);
        if (!hooks) return report("serve", hooks.error());
        engine::EngineOptions eo;
        eo.n_slots = st->parallel;
        eo.n_ctx = st->mo.ctx > 0 ? st->mo.ctx : std::min<int64_t>(4096, l->model->hp.n_ctx_train);
        eo.kv_budget_bytes = int64_t(st->kv_budget_mb * 1024 * 1024);
        eo.max_queue = st->max_queue;
        eo.n_threads = l->ctx->pool().n_threads();
        eo.exact = st->mo.exact;
        eo.flash_attn = st->mo.flash_attn;
        eo.kv.k = st->mo.kv_k.empty() ? st->mo.kv : st->mo.kv_k;
        eo.kv.v = st->mo.kv_v.empty() ? st->mo.kv : st->mo.kv_v;
        l->ctx.reset();
        auto eng = engine::Engine::create(*l->model, *l->tokenizer, eo);
        if (!eng) return report("serve", eng.error());
        auto tmpl = resolve_chat_template(st->chat_template, *l->tokenizer);
        if (!tmpl) return report("serve", tmpl.error());
        server::Server srv(**eng, *l->tokenizer, *tmpl, st->so, hooks->get());
        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);
        std::atomic<bool> done{false};
        std::thread watcher([&] {
            while (!done.load()) {
                if (g_stop) {
                    srv.stop();
                    break;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        });
        Status s = srv.run();
        done = true;
        watcher.join();
        return report("serve", s);
    };
    return c;
}

}  // namespace strata::cli

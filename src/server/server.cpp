// Routes: /v1/chat/completions, /v1/completions (streaming SSE and not), /v1/models,
// /lora-adapters, /function-vectors,
// /health, /metrics (Prometheus text), /tokenize, /detokenize. Streaming responses wait
// on a per-request channel fed by the engine's callback; a failed write (client gone)
// cancels the request so the engine frees its slot at the next step.
#include "server/server.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <fmt/format.h>
#include <mutex>
#include <random>

#include "server/openai.h"

namespace strata::server {

namespace {

using json = nlohmann::json;

struct Channel {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> pieces;
    engine::FinishReason finish = engine::FinishReason::kNone;
    int64_t n_generated = 0;
};

std::string new_id(const char* prefix) {
    static std::mt19937_64 rng{std::random_device{}()};
    static std::mutex mu;
    std::lock_guard<std::mutex> lk(mu);
    return fmt::format("{}-{:016x}", prefix, rng());
}

int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Generated text can be invalid UTF-8 (a lone byte token, a cut character): such bytes
// become U+FFFD instead of making nlohmann::json throw.
std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.http_status;
    res.set_content(dump_json(e.to_json()), "application/json");
}

}  // namespace

struct Server::Impl {
    engine::Engine& eng;
    const Tokenizer& tok;
    ChatTemplate tmpl;
    ServerOptions opts;
    httplib::Server http;
    int port = 0;

    const HookProvider* hooks = nullptr;

    Impl(engine::Engine& e, const Tokenizer& t, ChatTemplate c, ServerOptions o, const HookProvider* h)
        : eng(e), tok(t), tmpl(std::move(c)), opts(std::move(o)), hooks(h) {}

    bool authorized(const httplib::Request& req, httplib::Response& res) {
        if (opts.api_key.empty()) return true;
        if (req.get_header_value("Authorization") == "Bearer " + opts.api_key) return true;
        send_error(res, ApiError{401, "invalid or missing API key", "", "authentication_error"});
        return false;
    }

    void completion(const httplib::Request& req, httplib::Response& res, bool chat) {
        if (!authorized(req, res)) return;
        CompletionRequest cr;
        if (auto e = parse_completion(req.body, chat, &cr)) return send_error(res, *e);
        std::string text = chat ? apply_chat_template(tmpl, cr.messages, true) : cr.prompt;
        auto g = std::make_shared<engine::GenRequest>();
        g->prompt = tok.encode(text, false, chat);
        g->sampling = cr.sampling;
        g->max_tokens = cr.max_tokens;
        g->stop = cr.stop;
        g->ignore_eos = cr.ignore_eos;
        if (hooks) {
            auto h = hooks->make(cr.lora, cr.fv);
            if (!h) return send_error(res, ApiError{400, h.error().message(), cr.lora ? "lora" : "fv"});
            g->hooks = std::move(*h);
        } else if ((cr.lora && !cr.lora->empty()) || (cr.fv && !cr.fv->empty())) {
            return send_error(res, ApiError{400, "this server was started without --lora/--fv", cr.lora ? "lora" : "fv"});
        }
        const int64_t n_prompt = int64_t(g->prompt.size());
        if (n_prompt == 0) return send_error(res, ApiError{400, "the prompt is empty after tokenization", "prompt"});
        auto ch = std::make_shared<Channel>();
        g->on_event = [ch](const std::string& piece, engine::FinishReason f, int64_t n_generated) {
            std::lock_guard<std::mutex> lk(ch->mu);
            if (!piece.empty()) ch->pieces.push_back(piece);
            if (f != engine::FinishReason::kNone) ch->finish = f;
            ch->n_generated = n_generated;
            ch->cv.notify_all();
            return true;
        };
        if (Status s = eng.submit(g); !s) {
            if (s.code() == ErrorCode::kIo) {
                res.set_header("Retry-After", "1");
                return send_error(res, ApiError{429, s.message(), "", "rate_limit_error"});
            }
            const char* param = s.code() == ErrorCode::kOutOfRange ? (chat ? "messages" : "prompt") : "";
            return send_error(res, ApiError{400, s.message(), param});
        }
        const std::string id = new_id(chat ? "chatcmpl" : "cmpl");
        const int64_t created = now_s();
        const std::string model = opts.model_name;
        auto usage = [n_prompt](int64_t n_gen) {
            return json{{"prompt_tokens", n_prompt}, {"completion_tokens", n_gen}, {"total_tokens", n_prompt + n_gen}};
        };
        auto finish_str = [](engine::FinishReason f) -> json {
            if (f == engine::FinishReason::kStop) return "stop";
            if (f == engine::FinishReason::kLength) return "length";
            return nullptr;
        };
        if (!cr.stream) {
            std::string out;
            engine::FinishReason fin;
            int64_t n_gen;
            {
                std::unique_lock<std::mutex> lk(ch->mu);
                ch->cv.wait(lk, [&] { return ch->finish != engine::FinishReason::kNone; });
                for (auto& p : ch->pieces) out += p;
                fin = ch->finish;
                n_gen = ch->n_generated;
            }
            if (fin == engine::FinishReason::kError || fin == engine::FinishReason::kCancelled)
                return send_error(res, ApiError{500, "generation failed", "", "server_error"});
            json choice = {{"index", 0}, {"finish_reason", finish_str(fin)}, {"logprobs", nullptr}};
            if (chat) choice["message"] = {{"role", "assistant"}, {"content", out}};
            else choice["text"] = out;
            json body = {{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created},
                         {"model", model}, {"choices", json::array({choice})}, {"usage", usage(n_gen)}};
            res.set_content(dump_json(body), "application/json");
            return;
        }
        const bool include_usage = cr.include_usage;
        auto cancelled = g->cancelled;
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [ch, id, created, model, chat, include_usage, usage, finish_str, cancelled, first = true](
                size_t, httplib::DataSink& sink) mutable {
                auto send = [&](const json& j) {
                    const std::string line = "data: " + dump_json(j) + "\n\n";
                    return sink.write(line.data(), line.size());
                };
                auto chunk = [&](const json& delta_or_text, json finish) {
                    json choice = {{"index", 0}, {"finish_reason", finish}, {"logprobs", nullptr}};
                    if (chat) choice["delta"] = delta_or_text;
                    else choice["text"] = delta_or_text;
                    return json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"},
                                {"created", created}, {"model", model}, {"choices", json::array({choice})}};
                };
                std::deque<std::string> pieces;
                engine::FinishReason fin;
                int64_t n_gen;
                {
                    std::unique_lock<std::mutex> lk(ch->mu);
                    ch->cv.wait_for(lk, std::chrono::milliseconds(200), [&] {
                        return !ch->pieces.empty() || ch->finish != engine::FinishReason::kNone;
                    });
                    pieces.swap(ch->pieces);
                    fin = ch->finish;
                    n_gen = ch->n_generated;
                }
                bool ok = true;
                if (first && chat) {
                    ok = send(chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr));
                    first = false;
                }
                for (auto& p : pieces) {
                    if (!ok) break;
                    ok = send(chunk(chat ? json{{"content", p}} : json(p), nullptr));
                }
                if (ok && pieces.empty() && fin == engine::FinishReason::kNone) ok = sink.is_writable();
                if (!ok) {  // client went away: free the sequence now
                    cancelled->store(true);
                    return false;
                }
                if (fin != engine::FinishReason::kNone) {
                    send(chunk(chat ? json::object() : json(""), finish_str(fin)));
                    if (include_usage) {
                        json u = {{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"},
                                  {"created", created}, {"model", model}, {"choices", json::array()},
                                  {"usage", usage(n_gen)}};
                        send(u);
                    }
                    const std::string done = "data: [DONE]\n\n";
                    sink.write(done.data(), done.size());
                    sink.done();
                }
                return true;
            },
            [cancelled](bool success) {
                if (!success) cancelled->store(true);
            });
    }

    void routes() {
        http.set_payload_max_length(opts.max_body_bytes);
        http.new_task_queue = [n = opts.http_threads] { return new httplib::ThreadPool(size_t(n)); };
        http.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) { completion(q, r, true); });
        http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r) { completion(q, r, false); });
        http.Get("/v1/models", [this](const httplib::Request& q, httplib::Response& r) {
            if (!authorized(q, r)) return;
            json m = {{"id", opts.model_name}, {"object", "model"}, {"created", now_s()}, {"owned_by", "strata"}};
            r.set_content(json{{"object", "list"}, {"data", json::array({m})}}.dump(), "application/json");
        });
        http.Get("/lora-adapters", [this](const httplib::Request& q, httplib::Response& r) {
            if (!authorized(q, r)) return;
            r.set_content(dump_json(hooks ? hooks->list_lora() : json::array()), "application/json");
        });
        http.Get("/function-vectors", [this](const httplib::Request& q, httplib::Response& r) {
            if (!authorized(q, r)) return;
            r.set_content(dump_json(hooks ? hooks->list_fv() : json::array()), "application/json");
        });
        http.Get("/health", [](const httplib::Request&, httplib::Response& r) {
            r.set_content(R"({"status":"ok"})", "application/json");
        });
        http.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
            const auto s = eng.stats();
            std::string m;
            auto metric = [&](const char* name, const char* type, const char* help, double v) {
                m += fmt::format("# HELP strata_{} {}\n# TYPE strata_{} {}\nstrata_{} {}\n", name, help, name, type, name, v);
            };
            metric("prompt_tokens_total", "counter", "Prompt tokens evaluated.", double(s.prompt_tokens_total));
            metric("generated_tokens_total", "counter", "Tokens generated.", double(s.generated_tokens_total));
            metric("prompt_tokens_per_second", "gauge", "Mean prompt tokens per second since start.",
                   s.uptime_s > 0 ? double(s.prompt_tokens_total) / s.uptime_s : 0);
            metric("generated_tokens_per_second", "gauge", "Mean generated tokens per second since start.",
                   s.uptime_s > 0 ? double(s.generated_tokens_total) / s.uptime_s : 0);
            metric("kv_usage_ratio", "gauge", "KV bytes held by running sequences over the KV budget.",
                   s.kv_budget_bytes ? double(s.kv_used_bytes) / double(s.kv_budget_bytes) : 0);
            metric("requests_running", "gauge", "Sequences in slots.", double(s.requests_running));
            metric("requests_queued", "gauge", "Requests waiting for a slot.", double(s.requests_queued));
            metric("requests_rejected_total", "counter", "Requests answered 429.", double(s.requests_rejected));
            metric("requests_finished_total", "counter", "Requests finished.", double(s.requests_finished));
            metric("preemptions_total", "counter", "Running sequences preempted (re-queued) when the KV budget ran out.",
                   double(s.preemptions));
            metric("prefix_reused_tokens_total", "counter", "Prompt tokens served from a cached prefix.",
                   double(s.prefix_reused_tokens));
            r.set_content(m, "text/plain; version=0.0.4");
        });
        http.Post("/tokenize", [this](const httplib::Request& q, httplib::Response& r) {
            if (!authorized(q, r)) return;
            json j = json::parse(q.body, nullptr, false);
            if (j.is_discarded() || !j.is_object() || !j.contains("content") || !j["content"].is_string())
                return send_error(r, ApiError{400, "'content' must be a string", "content"});
            bool special = false;
            if (j.contains("add_special") && j["add_special"].is_boolean()) special = j["add_special"].get<bool>();
            auto ids = tok.encode(j["content"].get<std::string>(), special, special);
            r.set_content(json{{"tokens", ids}}.dump(), "application/json");
        });
        http.Post("/detokenize", [this](const httplib::Request& q, httplib::Response& r) {
            if (!authorized(q, r)) return;
            json j = json::parse(q.body, nullptr, false);
            if (j.is_discarded() || !j.is_object() || !j.contains("tokens") || !j["tokens"].is_array())
                return send_error(r, ApiError{400, "'tokens' must be an array of token ids", "tokens"});
            std::vector<int32_t> ids;
            for (const auto& t : j["tokens"]) {
                if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.n_vocab())
                    return send_error(r, ApiError{400, fmt::format("token ids must be integers in [0, {})", tok.n_vocab()),
                                                  "tokens"});
                ids.push_back(int32_t(t.get<int64_t>()));
            }
            r.set_content(dump_json(json{{"content", tok.decode(ids, true)}}), "application/json");
        });
        http.set_error_handler([](const httplib::Request&, httplib::Response& r) {
            if (r.status == 413)
                send_error(r, ApiError{413, "request body too large", ""});
            else if (r.status == 404)
                send_error(r, ApiError{404, "unknown route", "", "not_found_error"});
        });
        http.set_exception_handler([](const httplib::Request&, httplib::Response& r, std::exception_ptr) {
            send_error(r, ApiError{500, "internal error", "", "server_error"});
        });
    }
};

Server::Server(engine::Engine& eng, const Tokenizer& tok, ChatTemplate tmpl, ServerOptions opts,
               const HookProvider* hooks)
    : impl_(std::make_unique<Impl>(eng, tok, std::move(tmpl), std::move(opts), hooks)) {
    impl_->routes();
}

Server::~Server() { stop(); }

Status Server::run() {
    impl_->port = impl_->opts.port == 0 ? impl_->http.bind_to_any_port(impl_->opts.host)
                                        : (impl_->http.bind_to_port(impl_->opts.host, impl_->opts.port) ? impl_->opts.port : -1);
    if (impl_->port < 0)
        return io_error("--port: cannot listen on {}:{}", impl_->opts.host, impl_->opts.port);
    std::fprintf(stderr, "strata serve: listening on http://%s:%d\n", impl_->opts.host.c_str(), impl_->port);
    if (!impl_->http.listen_after_bind()) return io_error("server stopped with an error");
    return ok_status();
}

void Server::stop() {
    if (impl_) impl_->http.stop();
}

int Server::bound_port() const { return impl_->port; }

}  // namespace strata::server

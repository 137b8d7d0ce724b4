// Routes: /v1/chat/completions, /v1/completions (streaming SSE and not), /v1/models,
// /v1/models/{id}, /lora-adapters, /function-vectors, /health, /metrics (Prometheus text),
// /tokenize, /detokenize, /openapi.json.
//
// Order of checks for every request, before any body byte is read (pre-routing): known
// route (404), method (405), authentication (401), a body only where a route takes one,
// Content-Length within the limit (413). Bodies are read by the routes through a reader
// that counts bytes after de-chunking and decompression (transport.h). A request then
// waits on a per-request channel fed by the engine's callback, watching its connection,
// its deadline and server shutdown: any of them cancels its generation.
#include "server/server.h"

#include <httplib.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <fmt/format.h>
#include <mutex>
#include <optional>
#include <random>

#include "server/openapi.h"
#include "server/server_impl.h"

namespace strata::server {

using json = nlohmann::json;

std::string new_id(const char* prefix) {
    static std::mt19937_64 rng{std::random_device{}()};
    static std::mutex mu;
    std::lock_guard<std::mutex> lk(mu);
    return fmt::format("{}-{:016x}", prefix, rng());
}

int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.http_status;
    res.set_content(dump_json(e.to_json()), "application/json");
}

void close_after(const httplib::Request&, httplib::Response& res) { res.set_header("Connection", "close"); }

namespace {

bool has_body(const httplib::Request& req) {
    return req.has_header("Transfer-Encoding") ||
           (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
}

}  // namespace

std::optional<Server::Impl::RouteInfo> Server::Impl::route_of(const std::string& path) const {
    if (path == "/v1/chat/completions" || path == "/v1/completions") return RouteInfo{{"POST"}, true, true};
    if (path == "/tokenize" || path == "/detokenize") return RouteInfo{{"POST"}, true, true};
    if (path == "/v1/models" || path.rfind("/v1/models/", 0) == 0) return RouteInfo{{"GET", "HEAD"}, false, true};
    if (path == "/lora-adapters" || path == "/function-vectors" || path == "/openapi.json")
        return RouteInfo{{"GET", "HEAD"}, false, true};
    if (path == "/health") return RouteInfo{{"GET", "HEAD"}, false, false};
    if (path == "/metrics") return RouteInfo{{"GET", "HEAD"}, false, !opts.public_metrics};
    return std::nullopt;
}

bool Server::Impl::authorized(const httplib::Request& req) const {
    if (opts.api_key.empty()) return true;
    const std::string h = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    const std::string_view given = h.rfind(kBearer, 0) == 0 ? std::string_view(h).substr(kBearer.size()) : "";
    return keys_equal(given, opts.api_key);
}

void Server::Impl::cors(const httplib::Request& req, httplib::Response& res) const {
    if (opts.cors_origin.empty() || !req.has_header("Origin")) return;
    const std::string origin = req.get_header_value("Origin");
    if (opts.cors_origin != "*" && origin != opts.cors_origin) return;
    res.set_header("Access-Control-Allow-Origin", opts.cors_origin == "*" ? "*" : origin);
    res.set_header("Vary", "Origin");
}

httplib::Server::HandlerResponse Server::Impl::pre_route(const httplib::Request& req, httplib::Response& res) {
    const auto r = route_of(req.path);
    const bool body = has_body(req);
    if (!r) {
        if (body) close_after(req, res);
        send_error(res, ApiError{404, fmt::format("unknown route {}", req.path), "", "not_found_error"});
        return httplib::Server::HandlerResponse::Handled;
    }
    cors(req, res);
    std::string allow;
    for (const auto& m : r->methods) allow += (allow.empty() ? "" : ", ") + m;
    if (req.method == "OPTIONS" && !opts.cors_origin.empty() && req.has_header("Origin")) {
        res.status = 204;
        res.set_header("Access-Control-Allow-Methods", allow + ", OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Max-Age", "600");
        if (body) close_after(req, res);
        return httplib::Server::HandlerResponse::Handled;
    }
    if (std::find(r->methods.begin(), r->methods.end(), req.method) == r->methods.end()) {
        if (body) close_after(req, res);
        res.set_header("Allow", allow);
        send_error(res, ApiError{405, fmt::format("{} does not allow {} (allowed: {})", req.path, req.method, allow),
                                 "", "invalid_request_error"});
        return httplib::Server::HandlerResponse::Handled;
    }
    if (r->guarded && !authorized(req)) {
        if (body) close_after(req, res);
        send_error(res, ApiError{401, "invalid or missing API key", "", "authentication_error"});
        return httplib::Server::HandlerResponse::Handled;
    }
    if (body && !r->body) {
        close_after(req, res);
        send_error(res, ApiError{400, fmt::format("{} {} takes no request body", req.method, req.path), ""});
        return httplib::Server::HandlerResponse::Handled;
    }
    if (body && req.has_header("Content-Length")) {
        const std::string cl = req.get_header_value("Content-Length");
        uint64_t n = 0;
        const auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), n);
        if (ec != std::errc() || p != cl.data() + cl.size() || n > opts.max_body_bytes) {
            close_after(req, res);
            send_error(res, ApiError{413, fmt::format("request body over {} bytes", opts.max_body_bytes), ""});
            return httplib::Server::HandlerResponse::Handled;
        }
    }
    if (body && req.has_header("Content-Encoding")) {
        // httplib decodes exactly these names and reads any other value as identity, which
        // would hand compressed bytes to the JSON parser (or a coding we do not check).
        const std::string enc = req.get_header_value("Content-Encoding");
        if (enc != "identity" && enc != "gzip" && enc != "deflate" && enc != "br") {
            close_after(req, res);
            send_error(res, ApiError{415, fmt::format("unsupported Content-Encoding '{}' (supported: identity, "
                                                      "gzip, deflate, br)", enc), ""});
            return httplib::Server::HandlerResponse::Handled;
        }
    }
    return httplib::Server::HandlerResponse::Unhandled;
}

bool Server::Impl::body_of(const httplib::Request& req, const httplib::ContentReader& reader, httplib::Response& res,
             Clock::time_point deadline, std::string* body) {
    const auto until = std::min(deadline, Clock::now() + std::chrono::milliseconds(int64_t(opts.body_timeout_s * 1000)));
    switch (read_body(reader, opts.max_body_bytes, until, body)) {
        case BodyStatus::kOk: return true;
        case BodyStatus::kTooLarge:
            close_after(req, res);
            send_error(res, ApiError{413, fmt::format("request body over {} bytes (after decompression)",
                                                      opts.max_body_bytes), ""});
            return false;
        case BodyStatus::kTimeout:
            close_after(req, res);
            send_error(res, ApiError{408, "request body not received in time", "", "timeout_error"});
            return false;
        default:
            close_after(req, res);
            send_error(res, ApiError{400, "request body could not be read (bad chunking or compression)", ""});
            return false;
    }
}

std::shared_ptr<const sampling::TokenVocab> Server::Impl::token_vocab() {
    std::lock_guard<std::mutex> lk(vocab_mu);
    if (!vocab) {
        std::vector<std::string> pieces(size_t(tok.n_vocab()));
        std::vector<int32_t> eog;
        for (int32_t i = 0; i < tok.n_vocab(); ++i) {
            pieces[size_t(i)] = tok.token_to_piece(i, false);
            if (tok.is_eog(i)) eog.push_back(i);
        }
        vocab = sampling::make_token_vocab(std::move(pieces), std::move(eog));
    }
    return vocab;
}

void Server::Impl::tokenize(const httplib::Request& req, httplib::Response& r, const httplib::ContentReader& reader, bool detok) {
    std::string body;
    if (!body_of(req, reader, r, Clock::now() + std::chrono::milliseconds(int64_t(opts.timeout_s * 1000)), &body)) return;
    json j = json::parse(body, nullptr, false);
    if (!detok) {
        if (j.is_discarded() || !j.is_object() || !j.contains("content") || !j["content"].is_string())
            return send_error(r, ApiError{400, "'content' must be a string", "content"});
        bool special = false;
        if (j.contains("add_special") && j["add_special"].is_boolean()) special = j["add_special"].get<bool>();
        auto ids = tok.encode(j["content"].get<std::string>(), special, false);
        r.set_content(json{{"tokens", ids}}.dump(), "application/json");
        return;
    }
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
}

nlohmann::json Server::Impl::model_json() const {
    return {{"id", opts.model_name}, {"object", "model"}, {"created", now_s()}, {"owned_by", "strata"}};
}

void Server::Impl::routes() {
    http.set_socket_options(listener_socket_options);
    http.set_payload_max_length(opts.max_body_bytes);
    http.new_task_queue = [n = opts.http_threads] { return new httplib::ThreadPool(size_t(n)); };
    http.set_pre_routing_handler([this](const httplib::Request& q, httplib::Response& r) { return pre_route(q, r); });
    using Reader = httplib::ContentReader;
    http.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r, const Reader& rd) {
        completion(q, r, rd, true);
    });
    http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r, const Reader& rd) {
        completion(q, r, rd, false);
    });
    http.Post("/tokenize", [this](const httplib::Request& q, httplib::Response& r, const Reader& rd) {
        tokenize(q, r, rd, false);
    });
    http.Post("/detokenize", [this](const httplib::Request& q, httplib::Response& r, const Reader& rd) {
        tokenize(q, r, rd, true);
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& r) {
        r.set_content(json{{"object", "list"}, {"data", json::array({model_json()})}}.dump(), "application/json");
    });
    http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& q, httplib::Response& r) {
        const std::string want = q.matches.size() > 1 ? std::string(q.matches[1]) : "";
        if (want != opts.model_name)
            return send_error(r, ApiError{404, fmt::format("model '{}' does not exist", want), "model", "not_found_error"});
        r.set_content(dump_json(model_json()), "application/json");
    });
    http.Get("/lora-adapters", [this](const httplib::Request&, httplib::Response& r) {
        r.set_content(dump_json(hooks ? hooks->list_lora() : json::array()), "application/json");
    });
    http.Get("/function-vectors", [this](const httplib::Request&, httplib::Response& r) {
        r.set_content(dump_json(hooks ? hooks->list_fv() : json::array()), "application/json");
    });
    http.Get("/openapi.json", [](const httplib::Request&, httplib::Response& r) {
        r.set_content(std::string(openapi_json()), "application/json");
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& r) {
        r.set_content(R"({"status":"ok"})", "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) {
        r.set_content(metrics->render(eng.stats()), "text/plain; version=0.0.4");
    });
    http.set_error_handler([](const httplib::Request&, httplib::Response& r) {
        // httplib calls this for every status >= 400; a route or pre-route refusal that
        // already wrote its own error body keeps it.
        if (!r.body.empty()) return;
        if (r.status == 413) send_error(r, ApiError{413, "request body too large", ""});
        else if (r.status == 415) send_error(r, ApiError{415, "unsupported Content-Encoding", ""});
        else if (r.status == 404) send_error(r, ApiError{404, "unknown route", "", "not_found_error"});
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& r, std::exception_ptr) {
        send_error(r, ApiError{500, "internal error", "", "server_error"});
    });
    http.set_logger([this](const httplib::Request& q, const httplib::Response& r) {
        metrics->count_status(r.status);
        if (r.get_header_value("Connection") == "close")
            drain_and_close(connection_fd(q), 4 * opts.max_body_bytes, std::chrono::seconds(2),
                            std::chrono::milliseconds(opts.drain_quiet_ms));
    });
}

Server::Server(engine::Engine& eng, const Tokenizer& tok, ChatTemplate tmpl, ServerOptions opts,
               const HookProvider* hooks)
    : impl_(std::make_unique<Impl>(eng, tok, std::move(tmpl), std::move(opts), hooks)) {
    impl_->routes();
}

Server::~Server() { stop(); }

Status Server::run() {
    const auto& o = impl_->opts;
    if (o.http_threads < 1 || o.http_threads > 1024)
        return invalid_input("--http-threads: must be in 1..1024 (got {})", o.http_threads);
    impl_->port = o.port == 0 ? impl_->http.bind_to_any_port(o.host)
                              : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
    if (impl_->port < 0)
        return io_error("--port: cannot listen on {}:{} (in use by another process, or not an address of this host)",
                        o.host, o.port);
    std::fprintf(stderr, "strata serve: listening on http://%s:%d\n", o.host.c_str(), impl_->port);
    if (!impl_->http.listen_after_bind()) return io_error("server stopped with an error");
    return ok_status();
}

void Server::stop() {
    if (!impl_) return;
    // Waiting requests see the flag within 100 ms, cancel their generation and answer 503
    // (streams end with an error event), so httplib's workers drain promptly.
    impl_->stopping = true;
    impl_->http.stop();
}

int Server::bound_port() const { return impl_->port; }

}  // namespace strata::server

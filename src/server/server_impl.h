// The server's shared state and its route handlers (server.cpp: pre-routing checks, the
// small routes, start and stop; completions.cpp: /v1/chat/completions and /v1/completions).
// Internal to src/server.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sampling/grammar/grammar.h"
#include "server/metrics.h"
#include "server/openai.h"
#include "server/server.h"
#include "server/transport.h"

namespace strata::server {

std::string new_id(const char* prefix);  // "<prefix>-<16 hex digits>"
int64_t now_s();                          // Unix time in seconds
inline double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
// Generated text can be invalid UTF-8 (a lone byte token, a cut character): such bytes
// become U+FFFD instead of making nlohmann::json throw.
std::string dump_json(const nlohmann::json& j);
void send_error(httplib::Response& res, const ApiError& e);
// An early answer to a request whose body was not (wholly) read: the connection must not be
// reused, or the unread body would be parsed as the next request (smuggled past the checks
// of pre_route). httplib 0.11 keeps the connection open whatever the response says, so the
// logger (called once the answer is written) drains a bounded amount of what the client still
// sends, so it can read the answer, then ends the connection (drain_and_close in transport.h).
void close_after(const httplib::Request& req, httplib::Response& res);

struct Server::Impl {
    // Route table for the pre-routing checks: methods, whether a body is taken, and whether
    // the API key guards it (when one is set).
    struct RouteInfo {
        std::vector<std::string> methods;
        bool body = false;
        bool guarded = true;
    };

    engine::Engine& eng;
    const Tokenizer& tok;
    ChatTemplate tmpl;
    ServerOptions opts;
    httplib::Server http;
    int port = 0;
    const HookProvider* hooks = nullptr;
    // Shared with the engine's per-request callbacks, which can run after the server is gone
    // (the engine cancels what is left when it stops, after the server's destructor).
    std::shared_ptr<ServerMetrics> metrics = std::make_shared<ServerMetrics>();
    std::atomic<bool> stopping{false};
    std::shared_ptr<const sampling::TokenVocab> vocab;  // for grammar constraints, built on first use
    std::mutex vocab_mu;

    Impl(engine::Engine& e, const Tokenizer& t, ChatTemplate c, ServerOptions o, const HookProvider* h)
        : eng(e), tok(t), tmpl(std::move(c)), opts(std::move(o)), hooks(h) {}

    std::optional<RouteInfo> route_of(const std::string& path) const;
    bool authorized(const httplib::Request& req) const;  // the bearer key, compared in constant time
    void cors(const httplib::Request& req, httplib::Response& res) const;
    // Pre-routing: everything that can be refused before the body is read.
    httplib::Server::HandlerResponse pre_route(const httplib::Request& req, httplib::Response& res);
    // Reads the body under the limits; false (response set) when it cannot be used.
    bool body_of(const httplib::Request& req, const httplib::ContentReader& reader, httplib::Response& res,
                 Clock::time_point deadline, std::string* body);
    std::shared_ptr<const sampling::TokenVocab> token_vocab();
    // POST /v1/chat/completions (chat) and /v1/completions (completions.cpp).
    void completion(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                    bool chat);
    void tokenize(const httplib::Request& req, httplib::Response& r, const httplib::ContentReader& reader, bool detok);
    nlohmann::json model_json() const;
    void routes();
};

}  // namespace strata::server

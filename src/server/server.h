// The HTTP front end: OpenAI-compatible routes over cpp-httplib. It talks to the engine
// only (engine::Engine); every request body is validated in server/openai.cpp and a bad
// request gets an OpenAI-style error with a 4xx status while other requests carry on.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "engine/engine.h"
#include "server/openai.h"
#include "tokenizer/chat_template.h"

namespace strata::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;
    std::string api_key;            // empty = no auth; else every route but /health needs it
    bool public_metrics = false;    // serve /metrics without the key
    std::string model_name = "strata";
    size_t max_body_bytes = 1 << 20;  // after de-chunking and decompression
    int http_threads = 16;          // HTTP workers (connections served at once)
    double timeout_s = 600;         // overall deadline per request (body, queue and generation)
    double body_timeout_s = 30;     // the body must arrive within this (and the deadline)
    // After an early refusal: the unread body still arriving is dropped until the client has
    // been quiet this long (at most 4x max_body_bytes, 2 s), then the connection ends.
    int drain_quiet_ms = 200;
    std::string cors_origin;        // empty = no CORS headers; "*" or one origin
};

// Per-request hooks from the "lora" and "fv" extension fields (server/openai.h HookRef).
// The front end that loaded adapters and vectors at start-up implements it; the server
// only passes the selections through. Absent fields (nullopt) mean the provider's defaults.
class HookProvider {
public:
    virtual ~HookProvider() = default;
    // The hooks for one request, or an error message naming the bad field (HTTP 400).
    virtual Result<engine::RequestHooks> make(const std::optional<std::vector<HookRef>>& lora,
                                              const std::optional<std::vector<HookRef>>& fv) const = 0;
    // GET /lora-adapters and GET /function-vectors: [{"id", "name", "scale"}, ...] (file
    // names without directories)
    virtual nlohmann::json list_lora() const = 0;
    virtual nlohmann::json list_fv() const = 0;
};

class Server {
public:
    // hooks may be null: requests that name adapters or vectors are then refused.
    Server(engine::Engine& eng, const Tokenizer& tok, ChatTemplate tmpl, ServerOptions opts,
           const HookProvider* hooks = nullptr);
    ~Server();
    // Binds and serves until stop() (blocking). Errors when the address cannot be bound.
    Status run();
    void stop();
    int bound_port() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace strata::server

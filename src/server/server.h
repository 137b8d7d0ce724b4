// The HTTP front end: OpenAI-compatible routes over cpp-httplib. It talks to the engine
// only (engine::Engine); every request body is validated in server/openai.cpp and a bad
// request gets an OpenAI-style error with a 4xx status while other requests carry on.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "engine/engine.h"
#include "tokenizer/chat_template.h"

namespace strata::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;
    std::string api_key;            // empty = no auth
    std::string model_name = "strata";
    size_t max_body_bytes = 1 << 20;
    int http_threads = 32;
};

class Server {
public:
    Server(engine::Engine& eng, const Tokenizer& tok, ChatTemplate tmpl, ServerOptions opts);
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

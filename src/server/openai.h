// OpenAI API request parsing and response shaping. Parsing validates every field it uses
// and returns an ApiError (HTTP status, message, offending parameter) instead of throwing;
// unknown fields are ignored, as OpenAI does.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "sampling/sampler.h"
#include "tokenizer/chat_template.h"

namespace strata::server {

struct ApiError {
    int http_status = 400;
    std::string message;
    std::string param;  // may be empty
    std::string type = "invalid_request_error";
    nlohmann::json to_json() const;
};

// One entry of the "lora" / "fv" extension fields: an adapter or function vector loaded at
// start-up (`strata serve --lora/--fv`), by id, with a scale (default 1).
struct HookRef {
    int64_t id = 0;
    float scale = 1.f;
};

struct CompletionRequest {
    bool chat = false;
    std::vector<ChatMessage> messages;  // chat
    std::string prompt;                 // completions
    int32_t max_tokens = 256;
    sampling::SamplingParams sampling;
    std::vector<std::string> stop;
    bool stream = false;
    bool include_usage = false;
    bool ignore_eos = false;  // extension (llama.cpp's name): generate exactly max_tokens
    std::string model;
    // Extensions: when present, the adapters / vectors this request runs with (replacing the
    // server's defaults; an empty list means none). Ids are checked by the server.
    std::optional<std::vector<HookRef>> lora, fv;
};

// body: the raw request body. Returns the request or an error.
std::optional<ApiError> parse_completion(const std::string& body, bool chat, CompletionRequest* out);

}  // namespace strata::server

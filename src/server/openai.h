// OpenAI API request parsing and response shaping. Parsing validates every field it uses
// and returns an ApiError (HTTP status, message, offending parameter) instead of throwing;
// unknown fields are ignored, as OpenAI does.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
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

// One function the model may call (request field "tools").
struct ToolDef {
    std::string name, description;
    nlohmann::ordered_json parameters = nlohmann::ordered_json::object();  // a JSON Schema (key order kept)
};
enum class ToolChoice { kAuto, kNone, kRequired, kNamed };

enum class ResponseFormat { kText, kJsonObject, kJsonSchema };

// Bounds of the request fields that multiply work.
inline constexpr int kMaxChoices = 8;        // "n"
inline constexpr int kMaxTopLogprobs = 20;   // chat "top_logprobs"; completions "logprobs" <= 5
inline constexpr int kMaxTools = 64;
inline constexpr int kMaxLogitBias = 1024;

struct CompletionRequest {
    bool chat = false;
    std::vector<ChatMessage> messages;  // chat; tool calls and tool results rendered to text
    std::string prompt;                 // completions
    int32_t max_tokens = 0;             // 0: not given (the room left in the context)
    int n = 1;
    int32_t logprobs = -1;              // -1: off; k: the token's logprob and k alternatives
    bool echo = false;                  // completions: the prompt precedes the text
    ResponseFormat format = ResponseFormat::kText;
    nlohmann::ordered_json schema;      // kJsonSchema: response_format.json_schema.schema (key order kept)
    std::vector<ToolDef> tools;
    ToolChoice tool_choice = ToolChoice::kAuto;
    std::string tool_name;              // kNamed
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

// body: the raw request body; n_vocab bounds logit_bias ids. Returns the request or an error.
std::optional<ApiError> parse_completion(const std::string& body, bool chat, CompletionRequest* out,
                                         int32_t n_vocab = INT32_MAX);

}  // namespace strata::server

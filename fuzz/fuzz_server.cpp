// The server's request parsing (server::parse_completion) for /v1/chat/completions and
// /v1/completions bodies: messages and content parts, prompt, max_tokens /
// max_completion_tokens, sampling ranges, seed, n, stop, stream, stream_options, and the
// error object. Every input is parsed as both a chat and a completion body. Accepted
// requests are rendered and tokenized as server.cpp does; invariants: every accepted field
// is in its documented range, and every error serializes to JSON.
#include <string>

#include "fuzz.h"
#include "server/openai.h"
#include "tokenizer_fixture.h"

namespace {

using namespace strata;

void check_request(const server::CompletionRequest& r, bool chat) {
    const auto& s = r.sampling;
    STRATA_FUZZ_CHECK(r.chat == chat, "");
    // 0: not given (the engine uses the room left in the context).
    STRATA_FUZZ_CHECK(r.max_tokens >= 0 && r.max_tokens <= (1 << 20), std::to_string(r.max_tokens));
    STRATA_FUZZ_CHECK(r.n >= 1 && r.n <= server::kMaxChoices, std::to_string(r.n));
    STRATA_FUZZ_CHECK(r.logprobs >= -1 && r.logprobs <= server::kMaxTopLogprobs, std::to_string(r.logprobs));
    STRATA_FUZZ_CHECK(s.presence_penalty >= -2 && s.presence_penalty <= 2, "presence_penalty");
    STRATA_FUZZ_CHECK(s.frequency_penalty >= -2 && s.frequency_penalty <= 2, "frequency_penalty");
    STRATA_FUZZ_CHECK(s.logit_bias.size() <= size_t(server::kMaxLogitBias), "logit_bias");
    for (const auto& [id, b] : s.logit_bias) STRATA_FUZZ_CHECK(id >= 0 && b >= -100 && b <= 100, "logit_bias entry");
    STRATA_FUZZ_CHECK(r.tools.size() <= size_t(server::kMaxTools), "tools");
    STRATA_FUZZ_CHECK(s.temperature >= 0 && s.temperature <= 2, "temperature");
    STRATA_FUZZ_CHECK(s.top_p > 0 && s.top_p <= 1, "top_p");
    STRATA_FUZZ_CHECK(s.top_k >= 0 && s.top_k <= 1000000, "top_k");
    STRATA_FUZZ_CHECK(s.min_p >= 0 && s.min_p <= 1, "min_p");
    STRATA_FUZZ_CHECK(s.repeat_penalty >= 0.01f && s.repeat_penalty <= 100, "repetition_penalty");
    STRATA_FUZZ_CHECK(r.stop.size() <= 4, "stop");
    for (const auto& st : r.stop) STRATA_FUZZ_CHECK(!st.empty(), "empty stop sequence");
    if (chat) {
        STRATA_FUZZ_CHECK(!r.messages.empty(), "");
        for (const auto& m : r.messages)
            STRATA_FUZZ_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant" || m.role == "tool",
                              m.role);
    } else {
        STRATA_FUZZ_CHECK(!r.prompt.empty(), "");
    }
    // server.cpp: render, tokenize (control tokens only from the template's own markup).
    const Tokenizer& tok = fuzz::fixture_tokenizer();
    if (chat) {
        const RenderedPrompt p = render_chat(ChatTemplate{}, r.messages, true);
        for (TokenId id : tok.encode(p.text, false, p.markup)) STRATA_FUZZ_CHECK(id >= 0 && id < tok.n_vocab(), "");
    } else {
        for (TokenId id : tok.encode(r.prompt, false, false)) STRATA_FUZZ_CHECK(id >= 0 && id < tok.n_vocab(), "");
    }
}

}  // namespace

STRATA_FUZZ_TARGET(server) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    for (bool chat : {true, false}) {
        server::CompletionRequest r;
        if (auto e = server::parse_completion(body, chat, &r)) {
            STRATA_FUZZ_CHECK(e->http_status == 400 && !e->message.empty(), e->message);
            (void)e->to_json().dump();  // server.cpp's send_error
        } else {
            check_request(r, chat);
        }
    }
    return 0;
}

// POST /v1/chat/completions and /v1/completions: parse and validate, build the prompt
// (chat: the template's markup is the only source of control tokens), attach a grammar for
// JSON mode and tool calls, submit n engine requests, then answer whole or as SSE while
// watching the connection, the deadline and shutdown (any of them cancels the generation).
#include <condition_variable>
#include <deque>
#include <fmt/format.h>

#include "server/server_impl.h"
#include "server/tool_calls.h"

namespace strata::server {

using json = nlohmann::json;

namespace {

// One generated token as a client sees it.
struct TokenRec {
    int32_t id;
    float logprob;
    std::vector<engine::TokenLogprob> top;
};

// What one choice (of n) has produced; the channel holds all of a request's choices.
struct ChoiceState {
    std::deque<std::string> pieces;        // not yet streamed
    std::deque<TokenRec> tokens;           // not yet streamed (logprobs requested)
    std::string text;                      // everything (non-streaming)
    std::vector<TokenRec> all_tokens;      // everything (non-streaming)
    engine::FinishReason finish = engine::FinishReason::kNone;
    int64_t n_generated = 0;
    std::optional<Clock::time_point> last_token;
};

struct Channel {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<ChoiceState> choices;
    bool all_done() const {
        for (const auto& c : choices)
            if (c.finish == engine::FinishReason::kNone) return false;
        return true;
    }
};

const char* finish_name(engine::FinishReason f) {
    switch (f) {
        case engine::FinishReason::kStop: return "stop";
        case engine::FinishReason::kLength: return "length";
        case engine::FinishReason::kCancelled: return "cancelled";
        default: return "error";
    }
}

json bytes_of(const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
}

}  // namespace

void Server::Impl::completion(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                bool chat) {
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::milliseconds(int64_t(opts.timeout_s * 1000));
    std::string body;
    if (!body_of(req, reader, res, deadline, &body)) return;
    CompletionRequest cr;
    if (auto e = parse_completion(body, chat, &cr, tok.n_vocab())) return send_error(res, *e);
    if (cr.echo && cr.logprobs >= 0)
        return send_error(res, ApiError{400, "'echo' with 'logprobs' (prompt logprobs) is not supported", "echo"});

    // The prompt. Chat: the template's markup is the only source of control tokens.
    const bool tools_on = chat && !cr.tools.empty() && cr.tool_choice != ToolChoice::kNone;
    std::vector<int32_t> prompt;
    if (chat) {
        std::vector<ChatMessage> msgs = cr.messages;
        if (tools_on) {
            const std::string t = tools_system_text(cr.tools, cr.tool_choice, cr.tool_name);
            if (!msgs.empty() && msgs[0].role == "system") msgs[0].content += "\n\n" + t;
            else msgs.insert(msgs.begin(), ChatMessage{"system", t});
        }
        const RenderedPrompt r = render_chat(tmpl, msgs, true);
        prompt = tok.encode(r.text, true, r.markup);  // BOS where the vocab adds one
    } else {
        prompt = tok.encode(cr.prompt, true, false);
    }
    if (prompt.empty()) return send_error(res, ApiError{400, "the prompt is empty after tokenization", "prompt"});

    // A grammar for JSON mode and tool calls: parsed once, one sampler stage per choice.
    std::function<std::unique_ptr<sampling::Sampler>()> constraint;
    {
        Result<std::string> g = std::string();
        const char* param = "response_format";
        if (tools_on) {
            g = sampling::json_schema_to_grammar(tool_answer_schema(cr.tools, cr.tool_choice, cr.tool_name));
            param = "tools";
        } else if (cr.format == ResponseFormat::kJsonObject) {
            g = sampling::json_object_grammar();
        } else if (cr.format == ResponseFormat::kJsonSchema) {
            g = sampling::json_schema_to_grammar(cr.schema);
            param = "response_format.json_schema.schema";
        }
        if (!g) return send_error(res, ApiError{400, g.error().message(), param});
        if (!g->empty()) {
            auto compiled = sampling::parse_grammar(*g);
            if (!compiled) return send_error(res, ApiError{400, compiled.error().message(), param});
            constraint = [gr = *compiled, v = token_vocab()]() -> std::unique_ptr<sampling::Sampler> {
                return sampling::make_grammar_sampler(gr, v);
            };
        }
    }

    engine::RequestHooks req_hooks;
    if (hooks) {
        auto h = hooks->make(cr.lora, cr.fv);
        if (!h) return send_error(res, ApiError{400, h.error().message(), cr.lora ? "lora" : "fv"});
        req_hooks = std::move(*h);
    } else if ((cr.lora && !cr.lora->empty()) || (cr.fv && !cr.fv->empty())) {
        return send_error(res, ApiError{400, "this server was started without --lora/--fv", cr.lora ? "lora" : "fv"});
    }

    const int n = cr.n;
    auto ch = std::make_shared<Channel>();
    ch->choices.resize(size_t(n));
    const bool want_lp = cr.logprobs >= 0;
    std::vector<std::shared_ptr<engine::GenRequest>> gens;
    for (int i = 0; i < n; ++i) {
        auto g = std::make_shared<engine::GenRequest>();
        g->prompt = prompt;
        g->sampling = cr.sampling;
        if (i > 0 && g->sampling.seed != 0xFFFFFFFFu) g->sampling.seed += uint64_t(i);
        g->max_tokens = cr.max_tokens;
        g->stop = cr.stop;
        g->ignore_eos = cr.ignore_eos;
        g->logprobs = cr.logprobs;
        g->hooks = req_hooks;
        g->constraint = constraint;
        g->on_event = [metrics = metrics, ch, i, t0, want_lp](const engine::Event& ev) {
            std::lock_guard<std::mutex> lk(ch->mu);
            ChoiceState& c = ch->choices[size_t(i)];
            const auto now = Clock::now();
            if (ev.token) {
                if (c.last_token) metrics->observe_itl(seconds(now - *c.last_token));
                else if (i == 0) metrics->observe_ttft(seconds(now - t0));
                c.last_token = now;
                if (want_lp) {
                    TokenRec r{ev.token->id, ev.token->logprob, ev.token->top};
                    c.tokens.push_back(r);
                    c.all_tokens.push_back(std::move(r));
                }
            }
            if (!ev.piece.empty()) {
                c.pieces.emplace_back(ev.piece);
                c.text += ev.piece;
            }
            if (ev.finish != engine::FinishReason::kNone) {
                c.finish = ev.finish;
                metrics->observe_e2e(seconds(now - t0));
            }
            c.n_generated = ev.n_generated;
            ch->cv.notify_all();
            return true;
        };
        gens.push_back(std::move(g));
    }
    auto cancel_all = [gens] {
        for (const auto& g : gens) g->cancelled->store(true);
    };
    for (int i = 0; i < n; ++i) {
        if (Status s = eng.submit(gens[size_t(i)]); !s) {
            cancel_all();
            if (s.code() == ErrorCode::kIo) {
                res.set_header("Retry-After", "1");
                return send_error(res, ApiError{429, s.message(), "", "rate_limit_error"});
            }
            const char* param = s.code() == ErrorCode::kOutOfRange ? (chat ? "messages" : "prompt") : "";
            return send_error(res, ApiError{400, s.message(), param});
        }
    }

    const std::string id = new_id(chat ? "chatcmpl" : "cmpl");
    const int64_t created = now_s();
    const std::string model = opts.model_name;
    const int64_t n_prompt = int64_t(prompt.size());
    const std::string echo_text = cr.echo ? cr.prompt : "";
    auto piece_of = [this](int32_t t) { return tok.token_to_piece(t, false); };
    // OpenAI's logprobs objects: chat {"content": [...]}, completions {"tokens", ...}.
    auto logprobs_json = [chat, piece_of](const std::vector<TokenRec>& toks, size_t text_offset0) -> json {
        if (chat) {
            json content = json::array();
            for (const auto& t : toks) {
                const std::string p = piece_of(t.id);
                json top = json::array();
                for (const auto& a : t.top) {
                    const std::string ap = piece_of(a.id);
                    top.push_back({{"token", ap}, {"logprob", a.logprob}, {"bytes", bytes_of(ap)}});
                }
                content.push_back({{"token", p}, {"logprob", t.logprob}, {"bytes", bytes_of(p)}, {"top_logprobs", top}});
            }
            return {{"content", content}};
        }
        json tokens = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
        size_t off = text_offset0;
        for (const auto& t : toks) {
            const std::string p = piece_of(t.id);
            tokens.push_back(p);
            lps.push_back(t.logprob);
            json top = json::object();
            for (const auto& a : t.top) top[piece_of(a.id)] = a.logprob;
            tops.push_back(top);
            offs.push_back(off);
            off += p.size();
        }
        return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offs}};
    };
    const int fd = connection_fd(req);
    // Why a wait ended early: client gone, deadline, shutdown.
    auto interrupted = [this, fd, deadline]() -> std::optional<ApiError> {
        if (stopping.load()) return ApiError{503, "server is shutting down", "", "server_error"};
        if (Clock::now() > deadline)
            return ApiError{504, fmt::format("request exceeded the {} s deadline", opts.timeout_s), "", "timeout_error"};
        if (peer_gone(fd)) return ApiError{499, "client closed the connection", "", "cancelled"};
        return std::nullopt;
    };

    if (!cr.stream) {
        std::optional<ApiError> why;
        {
            std::unique_lock<std::mutex> lk(ch->mu);
            while (!ch->all_done()) {
                ch->cv.wait_for(lk, std::chrono::milliseconds(100));
                if (ch->all_done()) break;
                if ((why = interrupted())) break;
            }
        }
        if (why) {
            cancel_all();
            metrics->count_finish(why->http_status == 504 ? "timeout" : "cancelled");
            return send_error(res, *why);
        }
        json choices = json::array();
        int64_t n_gen = 0;
        bool failed = false;
        {
            std::lock_guard<std::mutex> lk(ch->mu);
            for (int i = 0; i < n; ++i) {
                const ChoiceState& c = ch->choices[size_t(i)];
                n_gen += c.n_generated;
                if (c.finish == engine::FinishReason::kError || c.finish == engine::FinishReason::kCancelled) {
                    failed = true;
                    continue;
                }
                std::string finish = finish_name(c.finish);
                json choice = {{"index", i}, {"logprobs", want_lp ? logprobs_json(c.all_tokens, echo_text.size()) : json(nullptr)}};
                if (chat) {
                    json msg = {{"role", "assistant"}, {"content", c.text}};
                    if (tools_on) {
                        const ToolAnswer a = parse_tool_answer(c.text);
                        if (a.is_call) {
                            msg["content"] = nullptr;
                            msg["tool_calls"] = json::array({{{"id", new_id("call")}, {"type", "function"},
                                                              {"function", {{"name", a.name}, {"arguments", a.arguments}}}}});
                            finish = "tool_calls";
                        } else {
                            msg["content"] = a.content;
                        }
                    }
                    choice["message"] = msg;
                } else {
                    choice["text"] = echo_text + c.text;
                }
                choice["finish_reason"] = finish;
                metrics->count_finish(finish);
                choices.push_back(choice);
            }
        }
        if (failed) {
            metrics->count_finish("error");
            return send_error(res, ApiError{500, "generation failed", "", "server_error"});
        }
        json out = {{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created},
                    {"model", model}, {"choices", choices},
                    {"usage", {{"prompt_tokens", n_prompt}, {"completion_tokens", n_gen}, {"total_tokens", n_prompt + n_gen}}}};
        res.set_content(dump_json(out), "application/json");
        return;
    }

    const bool include_usage = cr.include_usage;
    res.set_header("Cache-Control", "no-cache");
    struct StreamState {
        bool first = true;
        std::vector<bool> finished;
    };
    auto ss = std::make_shared<StreamState>();
    ss->finished.assign(size_t(n), false);
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, ch, ss, id, created, model, chat, n, include_usage, n_prompt, tools_on, want_lp, echo_text,
         logprobs_json, interrupted, cancel_all](size_t, httplib::DataSink& sink) {
            auto send = [&](const json& j) {
                const std::string line = "data: " + dump_json(j) + "\n\n";
                return sink.write(line.data(), line.size());
            };
            auto chunk = [&](int index, const json& delta_or_text, json finish, json logprobs) {
                json choice = {{"index", index}, {"finish_reason", finish}, {"logprobs", logprobs}};
                if (chat) choice["delta"] = delta_or_text;
                else choice["text"] = delta_or_text;
                return json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"},
                            {"created", created}, {"model", model}, {"choices", json::array({choice})}};
            };
            bool ok = true;
            if (ss->first) {
                for (int i = 0; i < n && ok; ++i) {
                    if (chat) ok = send(chunk(i, json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
                    else if (!echo_text.empty()) ok = send(chunk(i, echo_text, nullptr, nullptr));
                }
                ss->first = false;
            }
            struct Out {
                std::deque<std::string> pieces;
                std::deque<TokenRec> tokens;
                engine::FinishReason fin;
                std::string text;
            };
            std::vector<Out> outs;
            outs.resize(size_t(n));
            int64_t n_gen = 0;
            {
                std::unique_lock<std::mutex> lk(ch->mu);
                ch->cv.wait_for(lk, std::chrono::milliseconds(100), [&] {
                    for (const auto& c : ch->choices)
                        if (!c.pieces.empty() || !c.tokens.empty()) return true;
                    return ch->all_done();
                });
                for (int i = 0; i < n; ++i) {
                    ChoiceState& c = ch->choices[size_t(i)];
                    outs[size_t(i)].pieces.swap(c.pieces);
                    outs[size_t(i)].tokens.swap(c.tokens);
                    outs[size_t(i)].fin = c.finish;
                    outs[size_t(i)].text = c.text;
                    n_gen += c.n_generated;
                }
            }
            for (int i = 0; i < n && ok; ++i) {
                Out& o = outs[size_t(i)];
                if (tools_on) continue;  // the answer is one JSON object, sent whole at the end
                if (want_lp) {
                    // One chunk per token, so each carries its own logprobs; the text released
                    // with the token (stop strings and UTF-8 may hold some back) goes with it.
                    std::string text;
                    for (auto& p : o.pieces) text += p;
                    for (size_t k = 0; k < o.tokens.size() && ok; ++k) {
                        const std::string t = k + 1 == o.tokens.size() ? text : "";
                        json lp = logprobs_json({o.tokens[k]}, 0);
                        ok = send(chunk(i, chat ? json{{"content", t}} : json(t), nullptr, lp));
                    }
                    if (o.tokens.empty() && !text.empty() && ok)
                        ok = send(chunk(i, chat ? json{{"content", text}} : json(text), nullptr, nullptr));
                } else {
                    for (auto& p : o.pieces) {
                        if (!ok) break;
                        ok = send(chunk(i, chat ? json{{"content", p}} : json(p), nullptr, nullptr));
                    }
                }
            }
            if (!ok) {  // client went away: free the sequences now
                cancel_all();
                metrics->count_finish("cancelled");
                return false;
            }
            bool failed = false;
            for (int i = 0; i < n && ok; ++i) {
                Out& o = outs[size_t(i)];
                if (o.fin == engine::FinishReason::kNone || ss->finished[size_t(i)]) continue;
                ss->finished[size_t(i)] = true;
                if (o.fin == engine::FinishReason::kError || o.fin == engine::FinishReason::kCancelled) {
                    failed = true;
                    ok = send(chunk(i, chat ? json::object() : json(""), "error", nullptr));
                    metrics->count_finish("error");
                    continue;
                }
                std::string finish = finish_name(o.fin);
                json delta = chat ? json::object() : json("");
                if (tools_on) {
                    const ToolAnswer a = parse_tool_answer(o.text);
                    if (a.is_call) {
                        delta = {{"role", "assistant"}, {"content", nullptr},
                                 {"tool_calls", json::array({{{"index", 0}, {"id", new_id("call")}, {"type", "function"},
                                                              {"function", {{"name", a.name}, {"arguments", a.arguments}}}}})}};
                        finish = "tool_calls";
                    } else {
                        delta = {{"content", a.content}};
                    }
                }
                ok = send(chunk(i, delta, finish, nullptr));
                metrics->count_finish(finish);
            }
            if (failed && ok) {
                send(ApiError{500, "generation failed", "", "server_error"}.to_json());
            }
            bool done = true;
            for (bool f : ss->finished) done = done && f;
            if (!done && ok && !failed) {
                if (auto why = interrupted()) {
                    cancel_all();
                    metrics->count_finish(why->http_status == 504 ? "timeout" : "cancelled");
                    if (why->http_status == 499) return false;
                    for (int i = 0; i < n; ++i)
                        if (!ss->finished[size_t(i)]) send(chunk(i, chat ? json::object() : json(""), "error", nullptr));
                    send(why->to_json());
                    failed = true;
                }
            }
            if (!ok) {
                cancel_all();
                return false;
            }
            if (done || failed) {
                if (include_usage && !failed)
                    send(json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"},
                              {"created", created}, {"model", model}, {"choices", json::array()},
                              {"usage", {{"prompt_tokens", n_prompt}, {"completion_tokens", n_gen},
                                         {"total_tokens", n_prompt + n_gen}}}});
                const std::string end = "data: [DONE]\n\n";
                sink.write(end.data(), end.size());
                sink.done();
            }
            return true;
        },
        [cancel_all](bool success) {
            if (!success) cancel_all();
        });
}

}  // namespace strata::server

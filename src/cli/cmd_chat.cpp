// `strata chat`: multi-turn chat with the model's chat template. With -p it answers one
// message and exits; otherwise it reads user turns from stdin (a prompt is shown when
// stdin is a terminal). Each turn re-renders the conversation and reuses the cached
// prefix, so only new tokens are evaluated.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "tokenizer/chat_template.h"

namespace strata::cli {

namespace {

Status chat_turn(Loaded& l, sampling::Chain& chain, const engine::GenerateParams& gp,
                 std::vector<ChatMessage>& msgs, std::vector<int32_t>& cached, const ChatTemplate& tmpl,
                 bool timings) {
    const std::string text = apply_chat_template(tmpl, msgs, true);
    std::vector<int32_t> ids = l.tokenizer->encode(text, true, true);  // BOS where the vocab adds one
    if (int64_t(ids.size()) >= l.ctx->n_ctx())
        return out_of_range("conversation has {} tokens, more than the context size {}", ids.size(), l.ctx->n_ctx());
    // Reuse the longest cached prefix (keep at least one token to evaluate).
    size_t common = 0;
    while (common < cached.size() && common + 1 < ids.size() && cached[common] == ids[common]) ++common;
    l.ctx->truncate(int64_t(common));
    cached.assign(ids.begin(), ids.begin() + int64_t(common));
    std::vector<int32_t> fresh(ids.begin() + int64_t(common), ids.end());
    std::vector<int32_t> out;
    std::string reply;
    auto res = engine::generate(*l.ctx, *l.tokenizer, chain, fresh, gp,
                                [&](int32_t, const std::string& piece) {
                                    reply += piece;
                                    std::fwrite(piece.data(), 1, piece.size(), stdout);
                                    std::fflush(stdout);
                                    return true;
                                },
                                &out);
    fmt::print("\n");
    std::fflush(stdout);
    if (!res) return res.error();
    cached.insert(cached.end(), fresh.begin(), fresh.end());
    // The context holds the generated tokens except the last sampled one.
    if (!out.empty()) cached.insert(cached.end(), out.begin(), out.end() - 1);
    l.ctx->truncate(int64_t(cached.size()));
    msgs.push_back({"assistant", reply});
    if (timings) print_timings(*res);
    return ok_status();
}

}  // namespace

Command chat_command() {
    struct State {
        ModelOpts mo;
        sampling::SamplingParams sp;
        engine::GenerateParams gp;
        std::string prompt, system, chat_template;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "chat";
    c.summary = "chat with the model (interactive, or one message with -p)";
    c.declare = [st](CLI::App* app) {
        add_model_opts(app, st->mo);
        add_fv_opts(app, st->mo);
        add_sampling_opts(app, st->sp);
        app->add_option("-p,--prompt", st->prompt, "one user message: answer it and exit");
        app->add_option("-s,--system", st->system, "system prompt (default: the model's)");
        add_chat_template_opt(app, st->chat_template);
        app->add_option("-n,--n-predict", st->gp.n_predict, "max tokens per reply (-1 = until end)")->capture_default_str();
    };
    c.run = [st]() -> int {
        if (Status s = st->sp.validate(); !s) return report("chat", s);
        if (st->gp.n_predict < -1) return report("chat", invalid_input("-n: must be >= -1 (got {})", st->gp.n_predict));
        auto l = load(st->mo);
        if (!l) return report("chat", l.error());
        auto tmpl_r = resolve_chat_template(st->chat_template, *l->tokenizer);
        if (!tmpl_r) return report("chat", tmpl_r.error());
        const ChatTemplate tmpl = *tmpl_r;
        auto chain = sampling::make_chain(st->sp);
        std::vector<ChatMessage> msgs;
        if (!st->system.empty()) msgs.push_back({"system", st->system});
        std::vector<int32_t> cached;
        if (!st->prompt.empty()) {
            msgs.push_back({"user", st->prompt});
            return report("chat", chat_turn(*l, *chain, st->gp, msgs, cached, tmpl, true));
        }
        const bool tty = isatty(STDIN_FILENO);
        std::string line;
        for (;;) {
            if (tty) {
                fmt::print("> ");
                std::fflush(stdout);
            }
            if (!std::getline(std::cin, line)) break;
            if (line.empty()) continue;
            msgs.push_back({"user", line});
            if (Status s = chat_turn(*l, *chain, st->gp, msgs, cached, tmpl, tty); !s) return report("chat", s);
        }
        return kExitOk;
    };
    return c;
}

}  // namespace strata::cli

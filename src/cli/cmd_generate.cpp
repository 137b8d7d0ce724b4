// `strata generate`: raw completion of a prompt (no chat template).
#include <fmt/format.h>

#include <cstdio>

#include "cli/common.h"

namespace strata::cli {

Command generate_command() {
    struct State {
        ModelOpts mo;
        sampling::SamplingParams sp;
        engine::GenerateParams gp;
        std::string prompt;
        bool no_special = false;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "generate";
    c.summary = "complete a prompt (no chat template)";
    c.declare = [st](CLI::App* app) {
        add_model_opts(app, st->mo);
        add_fv_opts(app, st->mo);
        add_sampling_opts(app, st->sp);
        app->add_option("-p,--prompt", st->prompt, "prompt text")->required();
        app->add_option("-n,--n-predict", st->gp.n_predict, "tokens to generate (-1 = until end)")->capture_default_str();
        app->add_flag("--no-parse-special", st->no_special, "treat special-token text in the prompt as plain text");
    };
    c.run = [st]() -> int {
        if (Status s = st->sp.validate(); !s) return report("generate", s);
        if (st->gp.n_predict < -1) return report("generate", invalid_input("-n: must be >= -1 (got {})", st->gp.n_predict));
        auto l = load(st->mo);
        if (!l) return report("generate", l.error());
        auto ids = l->tokenizer->encode(st->prompt, true, !st->no_special);
        if (ids.empty()) return report("generate", invalid_input("-p: the prompt is empty"));
        if (int64_t(ids.size()) > l->ctx->n_ctx())
            return report("generate", invalid_input("-p: prompt has {} tokens, more than the context size {}",
                                                    ids.size(), l->ctx->n_ctx()));
        auto chain = sampling::make_chain(st->sp);
        fmt::print("{}", st->prompt);
        std::fflush(stdout);
        auto res = engine::generate(*l->ctx, *l->tokenizer, *chain, ids, st->gp,
                                    [](int32_t, const std::string& piece) {
                                        std::fwrite(piece.data(), 1, piece.size(), stdout);
                                        std::fflush(stdout);
                                        return true;
                                    });
        fmt::print("\n");
        if (!res) return report("generate", res.error());
        print_timings(*res);
        return kExitOk;
    };
    return c;
}

}  // namespace strata::cli

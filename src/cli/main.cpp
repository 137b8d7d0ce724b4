// strata: the command-line front end. Each subcommand is a Command (cli/cmd_*.cpp); this
// file only wires them into CLI11 and maps parse errors to exit code 2.
#include <fmt/format.h>

#include "cli/common.h"

int main(int argc, char** argv) {
    using namespace strata::cli;
    CLI::App app{"strata: a C++ inference engine for LLMs"};
    app.require_subcommand(1);
    app.set_help_all_flag("--help-all", "help for every subcommand");
    std::vector<Command> commands = {generate_command(), chat_command(), serve_command(), bench_command(), info_command(),
                                     lora_eval_command(), merge_command(), export_command(), perplexity_command(),
                                     fv_command(), kv_error_command(), kv_greedy_command()};
    std::vector<std::pair<CLI::App*, Command*>> subs;
    for (auto& c : commands) {
        CLI::App* sub = app.add_subcommand(c.name, c.summary);
        c.declare(sub);
        subs.emplace_back(sub, &c);
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string cmd;
        for (auto& [sub, c] : subs)
            if (sub->parsed()) cmd = " " + c->name;
        fmt::print(stderr, "strata{}: {}\n", cmd, e.what());
        return kExitUsage;
    }
    for (auto& [sub, c] : subs)
        if (sub->parsed()) return c->run();
    return kExitUsage;
}

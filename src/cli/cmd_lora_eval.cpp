// `strata lora-eval`: the engine side of the LoRA evaluation (docs/lora-merging.md).
//   tokenize: JSONL in, JSONL out; every string field F gets F_ids (arrays of strings get
//             arrays of id lists), so the Python trainer uses exactly Strata's tokenizer.
//   score:    JSONL items {"id","context","choices":[...]} (+ optional "greedy_n"); writes
//             {"id","logprobs":[sum log p(choice | context)...]} (+ "greedy" text). Adapters
//             come in through the shared --lora option, i.e. loaded back from disk and
//             applied at run time, which is what the evaluation protocol asks for.
// The context is evaluated once per item; each choice is evaluated after truncating the
// cache back to the context, so a 4-way MCQ costs one prompt plus four short tails.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <algorithm>
#include <fstream>
#include <iostream>

#include "cli/common.h"

namespace strata::cli {

namespace {

using nlohmann::json;

double log_softmax_at(std::span<const float> logits, int32_t tok) {
    float mx = -INFINITY;
    for (float v : logits) mx = std::max(mx, v);
    double sum = 0;
    for (float v : logits) sum += std::exp(double(v - mx));
    return double(logits[size_t(tok)] - mx) - std::log(sum);
}

Status tokenize_file(const Tokenizer& tok, const std::string& in, std::ostream& out) {
    std::ifstream f(in);
    if (!f) return io_error("{}: cannot open", in);
    std::string line;
    for (int64_t ln = 1; std::getline(f, line); ++ln) {
        if (line.empty()) continue;
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return invalid_input("{}:{}: not a JSON object", in, ln);
        json o = j;
        for (auto& [k, v] : j.items()) {
            if (v.is_string()) {
                o[k + "_ids"] = tok.encode(v.get<std::string>(), false, true);
            } else if (v.is_array() && !v.empty() && v[0].is_string()) {
                json arr = json::array();
                for (auto& s : v) arr.push_back(s.is_string() ? tok.encode(s.get<std::string>(), false, true)
                                                              : std::vector<TokenId>{});
                o[k + "_ids"] = arr;
            }
        }
        out << o.dump() << "\n";
    }
    return ok_status();
}

Status score_file(Loaded& l, const std::string& in, std::ostream& out) {
    std::ifstream f(in);
    if (!f) return io_error("{}: cannot open", in);
    std::string line;
    model::Context& ctx = *l.ctx;
    for (int64_t ln = 1; std::getline(f, line); ++ln) {
        if (line.empty()) continue;
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("context") || !j["context"].is_string() ||
            !j.contains("choices") || !j["choices"].is_array())
            return invalid_input("{}:{}: expected an object with \"context\" and \"choices\"", in, ln);
        std::vector<TokenId> c = l.tokenizer->encode(j["context"].get<std::string>(), false, true);
        if (c.empty()) return invalid_input("{}:{}: empty context", in, ln);
        ctx.truncate(0);
        auto r = ctx.eval(c);
        if (!r) return r.error().with_context(fmt::format("{}:{}", in, ln));
        const std::vector<float> first(r->begin(), r->end());
        json lps = json::array();
        for (auto& ch : j["choices"]) {
            if (!ch.is_string()) return invalid_input("{}:{}: choices must be strings", in, ln);
            std::vector<TokenId> t = l.tokenizer->encode(ch.get<std::string>(), false, true);
            if (t.empty()) return invalid_input("{}:{}: empty choice", in, ln);
            double lp = log_softmax_at(first, t[0]);
            if (t.size() > 1) {
                ctx.truncate(int64_t(c.size()));
                auto rr = ctx.eval(std::span<const TokenId>(t.data(), t.size() - 1), true);
                if (!rr) return rr.error().with_context(fmt::format("{}:{}", in, ln));
                const int64_t V = l.model->hp.n_vocab;
                for (size_t i = 1; i < t.size(); ++i)
                    lp += log_softmax_at(rr->subspan(size_t(int64_t(i - 1) * V), size_t(V)), t[i]);
            }
            lps.push_back(lp);
        }
        json o = {{"id", j.value("id", std::to_string(ln))}, {"logprobs", lps}};
        // Greedy continuation (format-compliance metric): argmax decoding of a few tokens.
        if (int n = j.value("greedy_n", 0); n > 0) {
            ctx.truncate(int64_t(c.size()));
            std::vector<float> lg = first;
            std::vector<TokenId> gen;
            for (int s = 0; s < n; ++s) {
                TokenId best = TokenId(std::max_element(lg.begin(), lg.end()) - lg.begin());
                if (l.tokenizer->is_eog(best)) break;
                gen.push_back(best);
                auto rr = ctx.eval(std::span<const TokenId>(&gen.back(), 1));
                if (!rr) return rr.error();
                lg.assign(rr->begin(), rr->end());
            }
            o["greedy"] = l.tokenizer->decode(gen, false);
        }
        out << o.dump() << "\n";
    }
    return ok_status();
}

}  // namespace

Command lora_eval_command() {
    struct State {
        ModelOpts mo;
        std::string mode, in, out;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "lora-eval";
    c.summary = "tokenize or score JSONL items (LoRA evaluation helper)";
    c.declare = [st](CLI::App* app) {
        add_model_opts(app, st->mo);
        app->add_option("mode", st->mode, "tokenize | score")->required()->check(CLI::IsMember({"tokenize", "score"}));
        app->add_option("--in", st->in, "input JSONL")->required();
        app->add_option("-o,--out", st->out, "output JSONL (default: stdout)");
    };
    c.run = [st]() -> int {
        auto l = load(st->mo);
        if (!l) return report("lora-eval", l.error());
        std::ofstream file;
        if (!st->out.empty()) {
            file.open(st->out);
            if (!file) return report("lora-eval", io_error("{}: cannot create", st->out));
        }
        std::ostream& out = st->out.empty() ? std::cout : file;
        Status s = st->mode == "tokenize" ? tokenize_file(*l->tokenizer, st->in, out) : score_file(*l, st->in, out);
        return report("lora-eval", s);
    };
    return c;
}

}  // namespace strata::cli

// strata kv-greedy: free-running greedy decoding under KV formats (spec kvarn.md §6.3,
// metric 4). Model compute is always f32 (--exact); only the cache changes. Per chat
// prompt (one per line of --prompts, rendered with the model's chat template):
//   reference — greedy decode with an fp32 cache up to -n tokens or end of generation; its
//               log-softmax at every generated position is kept;
//   (a) teacher-forced — each configuration prefills the prompt in one eval (as generation
//               does) and is then fed the reference trajectory one token per eval; per
//               position KL(p_fp32 || p_cfg) over the full vocabulary (double log-softmax);
//   (b) free-running — each configuration decodes greedily on its own; first position
//               whose token differs from the reference trajectory, and the share of
//               positions < the reference length holding the same token.
// Writes PREFIX.kl.tsv (kv, prompt, pos, kl) and PREFIX.seq.tsv (kv, prompt, ref_len,
// cfg_len, first_diff, same_share); tools/kv_greedy.py summarizes them. --shard I/N takes
// the prompts whose 0-based index is I mod N (prompt numbers stay those of the whole file),
// so N processes can share a run and tools/kv_greedy.py reads their outputs together.
#include <algorithm>
#include <cmath>
#include <charconv>
#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "cli/common.h"
#include "tokenizer/chat_template.h"

namespace strata::cli {
namespace {

int32_t argmax(const float* lg, int64_t V) { return int32_t(std::max_element(lg, lg + V) - lg); }

}  // namespace

Command kv_greedy_command() {
    struct State {
        ModelOpts mo;
        std::string prompts, kvs, out, shard;
        int n = 1024;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "kv-greedy";
    c.summary = "free-running greedy decoding under KV formats vs an fp32 cache (first divergence, KL growth)";
    c.declare = [st](CLI::App* app) {
        add_model_opts(app, st->mo);
        app->add_option("--prompts", st->prompts, "file with one chat prompt per line")->required();
        app->add_option("--kv-list", st->kvs, "comma-separated KV formats to compare with fp32")->required();
        app->add_option("-n,--n-predict", st->n, "most tokens per answer")->capture_default_str();
        app->add_option("-o,--out", st->out, "output prefix (PREFIX.kl.tsv, PREFIX.seq.tsv)")->required();
        app->add_option("--shard", st->shard, "I/N: only the prompts whose index is I mod N (0 <= I < N)");
    };
    c.run = [st]() -> int {
        const char* cmd = "kv-greedy";
        if (st->n < 1) return report(cmd, invalid_input("-n: must be >= 1 (got {})", st->n));
        if (st->mo.kv != "fp16" || !st->mo.kv_k.empty() || !st->mo.kv_v.empty())
            return report(cmd, invalid_input("--kv/--kv-k/--kv-v: kv-greedy takes its formats from --kv-list"));
        const std::vector<std::string> kvs = split_commas(st->kvs);
        if (kvs.empty()) return report(cmd, invalid_input("--kv-list: no format named"));
        auto ptext = read_text_file(st->prompts, "--prompts");
        if (!ptext) return report(cmd, ptext.error());
        std::istringstream pin(*ptext);
        std::vector<std::string> prompts;
        for (std::string line; std::getline(pin, line);)
            if (!line.empty() && line[0] != '#') prompts.push_back(line);
        if (prompts.empty()) return report(cmd, invalid_input("--prompts: {} holds no prompt", st->prompts));
        size_t shard_i = 0, shard_n = 1;
        if (!st->shard.empty()) {
            // I/N, both decimal, nothing else: from_chars rejects signs, spaces and overflow.
            const std::string& v = st->shard;
            const size_t slash = v.find('/');
            size_t i = 0, n = 0;
            auto whole = [](std::string_view t, size_t& x) {
                auto [e, ec] = std::from_chars(t.data(), t.data() + t.size(), x);
                return !t.empty() && ec == std::errc() && e == t.data() + t.size();
            };
            if (slash == std::string::npos || !whole(std::string_view(v).substr(0, slash), i) ||
                !whole(std::string_view(v).substr(slash + 1), n) || n == 0 || i >= n)
                return report(cmd, invalid_input("--shard: want I/N with 0 <= I < N (got '{}')", v));
            shard_i = i, shard_n = n;
        }
        size_t n_done = 0, n_mine = 0;
        for (size_t p = 0; p < prompts.size(); ++p) n_mine += p % shard_n == shard_i;
        if (n_mine == 0)
            return report(cmd, invalid_input("--shard {}: selects none of the {} prompts", st->shard, prompts.size()));

        ModelOpts mo = st->mo;
        mo.exact = true;  // spec §6.1: model compute f32, only the cache changes
        mo.kv = "fp32";
        auto l = load(mo);  // the reference context
        if (!l) return report(cmd, l.error());
        std::vector<std::unique_ptr<model::Context>> cfg;
        for (const std::string& k : kvs) {
            model::ContextParams cp;
            cp.n_ctx = l->ctx->n_ctx();
            cp.exact = true;
            cp.kv.k = cp.kv.v = k;
            cp.pool = &l->ctx->pool();
            auto x = model::Context::create(*l->model, cp);
            if (!x) return report(cmd, x.error().with_context(fmt::format("--kv-list {}", k)));
            cfg.push_back(std::move(*x));
        }
        std::ofstream kl_out(st->out + ".kl.tsv"), seq_out(st->out + ".seq.tsv");
        if (!kl_out || !seq_out) return report(cmd, not_found("{}.*.tsv: cannot write", st->out));
        kl_out << "kv\tprompt\tpos\tkl\n";
        seq_out << "kv\tprompt\tref_len\tcfg_len\tfirst_diff\tsame_share\n";

        auto tmpl_r = resolve_chat_template("", *l->tokenizer);
        if (!tmpl_r) return report(cmd, tmpl_r.error());
        const ChatTemplate tmpl = *tmpl_r;
        const Tokenizer& tok = *l->tokenizer;
        std::vector<double> lsm;
        for (size_t p = 0; p < prompts.size(); ++p) {
            if (p % shard_n != shard_i) continue;
            const std::string text = apply_chat_template(tmpl, {{"user", prompts[p]}}, true);
            const std::vector<int32_t> ids = tok.encode(text, true, true);
            const int64_t n_max = std::min<int64_t>(st->n, l->ctx->n_ctx() - int64_t(ids.size()));
            if (n_max < 1)
                return report(cmd, invalid_input("--prompts line {}: {} tokens leave no room in --ctx {}", p + 1,
                                                 ids.size(), l->ctx->n_ctx()));
            // Reference trajectory and its log-softmax per generated position (float keeps
            // 1024 x 49152 values at 200 MB).
            l->ctx->truncate(0);
            std::vector<int32_t> ref;
            std::vector<float> ref_lsm;
            auto lg = l->ctx->eval(ids);
            if (!lg) return report(cmd, lg.error());
            const int64_t V = int64_t(lg->size());
            for (;;) {
                log_softmax(lg->data(), V, lsm);
                ref_lsm.insert(ref_lsm.end(), lsm.begin(), lsm.end());
                const int32_t t = argmax(lg->data(), V);
                ref.push_back(t);
                if (tok.is_eog(t) || int64_t(ref.size()) >= n_max) break;
                lg = l->ctx->eval(std::span<const int32_t>(&t, 1));
                if (!lg) return report(cmd, lg.error());
            }
            const int64_t m = int64_t(ref.size());
            for (size_t k = 0; k < kvs.size(); ++k) {
                model::Context& x = *cfg[k];
                // (a) teacher-forced on the reference trajectory.
                x.truncate(0);
                auto xl = x.eval(ids);
                if (!xl) return report(cmd, xl.error());
                for (int64_t i = 0;; ++i) {
                    log_softmax(xl->data(), V, lsm);
                    const float* r = &ref_lsm[size_t(i * V)];
                    double kl = 0;
                    // Both sides rounded to float as the reference is stored, so equal
                    // logits give KL 0 exactly.
                    for (int64_t v = 0; v < V; ++v)
                        kl += std::exp(double(r[v])) * (double(r[v]) - double(float(lsm[size_t(v)])));
                    kl_out << fmt::format("{}\t{}\t{}\t{:.6g}\n", kvs[k], p, i, std::max(0.0, kl));
                    if (i + 1 >= m) break;
                    xl = x.eval(std::span<const int32_t>(&ref[size_t(i)], 1));
                    if (!xl) return report(cmd, xl.error());
                }
                // (b) free-running.
                x.truncate(0);
                xl = x.eval(ids);
                if (!xl) return report(cmd, xl.error());
                std::vector<int32_t> own;
                for (;;) {
                    const int32_t t = argmax(xl->data(), V);
                    own.push_back(t);
                    if (tok.is_eog(t) || int64_t(own.size()) >= n_max) break;
                    xl = x.eval(std::span<const int32_t>(&t, 1));
                    if (!xl) return report(cmd, xl.error());
                }
                int64_t first = -1, same = 0;
                for (int64_t i = 0; i < m; ++i) {
                    const bool eq = i < int64_t(own.size()) && own[size_t(i)] == ref[size_t(i)];
                    same += eq;
                    if (!eq && first < 0) first = i;
                }
                if (first < 0 && int64_t(own.size()) != m) first = m;  // same tokens, different length
                seq_out << fmt::format("{}\t{}\t{}\t{}\t{}\t{:.4f}\n", kvs[k], p, m, own.size(), first,
                                       double(same) / double(m));
            }
            kl_out.flush(), seq_out.flush();
            fmt::print(stderr, "prompt {} ({}/{}): {} tokens\n", p + 1, ++n_done, n_mine, m);
        }
        fmt::print("kv-greedy: {} prompts x {} formats -> {}.kl.tsv, {}.seq.tsv\n", n_mine, kvs.size(), st->out,
                   st->out);
        return kExitOk;
    };
    return c;
}

}  // namespace strata::cli

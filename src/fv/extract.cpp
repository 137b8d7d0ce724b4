// Extraction: means, CIE / LRP head scores, vector building, stats JSON.
#include "fv/extract.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "fv/inject.h"
#include "fv/relevance.h"
#include "tensor/dtype.h"

namespace strata::fv {

Result<Method> parse_method(const std::string& s) {
    if (s == "mean") return Method::kMean;
    if (s == "cie") return Method::kCie;
    if (s == "lrp") return Method::kLrp;
    if (s == "random") return Method::kRandom;
    return invalid_input("--method: '{}' is not one of mean, cie, lrp, random", s);
}

Result<LrpScore> parse_lrp_score(const std::string& s) {
    if (s == "labels") return LrpScore::kLabels;
    if (s == "all") return LrpScore::kAll;
    if (s == "signed") return LrpScore::kSigned;
    return invalid_input("--score: '{}' is not one of labels, all, signed", s);
}

const char* method_name(Method m) {
    switch (m) {
        case Method::kMean: return "mean";
        case Method::kCie: return "cie";
        case Method::kLrp: return "lrp";
        case Method::kRandom: return "random";
    }
    return "?";
}

const char* lrp_score_name(LrpScore s) {
    switch (s) {
        case LrpScore::kLabels: return "labels";
        case LrpScore::kAll: return "all";
        case LrpScore::kSigned: return "signed";
    }
    return "?";
}

namespace {

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

double prob_of(std::span<const float> logits, int32_t t) {
    double mx = -1e300;
    for (float v : logits) mx = std::max(mx, double(v));
    double z = 0;
    for (float v : logits) z += std::exp(double(v) - mx);
    return std::exp(double(logits[size_t(t)]) - mx) / z;
}

bool in_top(std::span<const float> logits, int32_t t, int k) {
    int above = 0;
    for (float v : logits)
        if (v > logits[size_t(t)] && ++above >= k) return false;
    return true;
}

// Replaces head `head`'s output at the last row of layer `layer` by `mean`: adds
// W_O[:, head] (mean - orig) to the o_proj output.
class PatchHook final : public model::MatmulHook {
public:
    PatchHook(int layer, int head, int64_t d, const float* mean, const std::vector<float>& wo)
        : layer_(layer), head_(head), d_(d), mean_(mean), wo_(wo) {}
    void after_matmul(const model::Weight& w, const float* x, int64_t n, float* y) override {
        if (w.role != model::WeightRole::kO || w.layer != layer_) return;
        const float* xl = x + (n - 1) * w.n_cols + head_ * d_;
        float* yl = y + (n - 1) * w.n_rows;
        std::vector<float> delta(static_cast<size_t>(d_));
        for (int64_t i = 0; i < d_; ++i) delta[size_t(i)] = mean_[i] - xl[i];
        for (int64_t r = 0; r < w.n_rows; ++r) {
            const float* wr = &wo_[size_t(r * w.n_cols + head_ * d_)];
            float s = 0;
            for (int64_t i = 0; i < d_; ++i) s += wr[i] * delta[size_t(i)];
            yl[r] += s;
        }
    }

private:
    int layer_, head_;
    int64_t d_;
    const float* mean_;
    const std::vector<float>& wo_;
};

std::vector<float> dequantize(const model::Weight& w) {
    std::vector<float> out(static_cast<size_t>(w.n_rows * w.n_cols));
    for (int64_t r = 0; r < w.n_rows; ++r)
        dequantize_row(w.type, w.data + size_t(r) * w.row_bytes, &out[size_t(r * w.n_cols)], w.n_cols);
    return out;
}

}  // namespace

std::vector<std::pair<int, int>> top_heads(const std::vector<double>& score, int64_t n_head, int k) {
    std::vector<size_t> idx(score.size());
    std::iota(idx.begin(), idx.end(), size_t(0));
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
    std::vector<std::pair<int, int>> out;
    for (size_t i = 0; i < idx.size() && int(out.size()) < k; ++i)
        out.emplace_back(int(int64_t(idx[i]) / n_head), int(int64_t(idx[i]) % n_head));
    return out;
}

Result<std::vector<std::pair<int, int>>> select_heads(const model::Model& m, const HeadStats& st, Method method,
                                                      LrpScore score, int k, uint64_t seed) {
    const int64_t LH = st.n_layer * st.n_head;
    if (k < 0 || k > LH) return invalid_input("--heads: {} out of range 0..{}", k, LH);
    switch (method) {
        case Method::kMean: {
            if (k == 0) return top_heads(std::vector<double>(size_t(LH), 0.0), st.n_head, int(LH));
            std::vector<double> norm(static_cast<size_t>(LH));
            for (int64_t l = 0; l < st.n_layer; ++l)
                for (int64_t h = 0; h < st.n_head; ++h) {
                    std::vector<float> v(size_t(m.hp.n_embd), 0.f);
                    add_head_output(m.layers[size_t(l)].wo, int(h), st.head_dim,
                                    &st.mean[size_t((l * st.n_head + h) * st.head_dim)], 1.f, v.data());
                    double s = 0;
                    for (float x : v) s += double(x) * double(x);
                    norm[size_t(l * st.n_head + h)] = std::sqrt(s);
                }
            return top_heads(norm, st.n_head, k);
        }
        case Method::kCie:
            if (st.cie.empty()) return invalid_input("no CIE scores (extract with --method cie)");
            return top_heads(st.cie, st.n_head, k == 0 ? int(LH) : k);
        case Method::kLrp: {
            const auto& s = score == LrpScore::kLabels ? st.lrp_labels : score == LrpScore::kAll ? st.lrp_all : st.lrp_signed;
            if (s.empty()) return invalid_input("no LRP scores (extract with --method lrp)");
            return top_heads(s, st.n_head, k == 0 ? int(LH) : k);
        }
        case Method::kRandom: {
            std::mt19937_64 rng(seed);
            std::vector<double> r(static_cast<size_t>(LH));
            for (double& x : r) x = std::uniform_real_distribution<double>(0, 1)(rng);
            return top_heads(r, st.n_head, k == 0 ? int(LH) : k);
        }
    }
    return invalid_input("unknown method");
}

FunctionVector build_vector(const model::Model& m, const HeadStats& st, const std::vector<std::pair<int, int>>& heads,
                            int layer, bool distributed, ValueType dtype, const ModelIdentity& id, const std::string& task) {
    FunctionVector fv;
    fv.distributed = distributed;
    fv.model_hash = id.hash;
    fv.hidden_size = id.hidden_size;
    fv.n_layers = id.n_layers;
    fv.n_heads = id.n_heads;
    fv.head_dim = id.head_dim;
    fv.dtype = dtype;
    fv.task = task.substr(0, kMaxTaskName);
    const int64_t d = st.head_dim;
    if (distributed) {
        std::vector<std::pair<int, int>> sorted = heads;
        std::sort(sorted.begin(), sorted.end());
        fv.has_scores = true;
        // The rank-order score: how many selected heads it beats (higher = more important).
        for (const auto& [l, h] : sorted) {
            FvEntry e;
            e.layer = l;
            e.head = h;
            const float* mu = &st.mean[size_t((int64_t(l) * st.n_head + h) * d)];
            e.values.assign(mu, mu + d);
            const auto it = std::find(heads.begin(), heads.end(), std::pair{l, h});
            e.score = float(heads.size() - size_t(it - heads.begin()));
            fv.entries.push_back(std::move(e));
        }
    } else {
        FvEntry e;
        e.layer = layer;
        e.values.assign(size_t(m.hp.n_embd), 0.f);
        for (const auto& [l, h] : heads)
            add_head_output(m.layers[size_t(l)].wo, h, d, &st.mean[size_t((int64_t(l) * st.n_head + h) * d)], 1.f,
                            e.values.data());
        fv.entries.push_back(std::move(e));
    }
    return fv;
}

Result<ExtractResult> extract(const model::Model& m, model::Context& ctx, const Tokenizer& tok, const Task& task,
                              const ExtractParams& p, const ModelIdentity& id, const Progress& progress) {
    const auto& hp = m.hp;
    const int64_t L = hp.n_layer, H = hp.n_head, d = hp.head_dim, LH = L * H;
    if (p.n_prompts < 1 || p.n_prompts > 10000) return invalid_input("--prompts: {} out of range 1..10000", p.n_prompts);
    if (p.n_score_prompts < 1 || p.n_score_prompts > 10000)
        return invalid_input("--score-prompts: {} out of range 1..10000", p.n_score_prompts);
    if (p.filter_top < 0) return invalid_input("--filter-top: must be >= 0 (got {})", p.filter_top);
    if (p.shots < 1 || p.shots > 64) return invalid_input("--shots: {} out of range 1..64", p.shots);
    if (int64_t(task.train.size()) < p.shots + 1)
        return invalid_input("{}: {} training pairs, need more than --shots {}", task.name, task.train.size(), p.shots);
    const int layer = p.layer < 0 ? int(L / 3) : p.layer;
    if (layer >= L) return invalid_input("--layer: {} out of range 0..{}", layer, L - 1);
    if (p.heads < 0 || p.heads > LH) return invalid_input("--heads: {} out of range 0..{}", p.heads, LH);

    ExtractResult res;
    HeadStats& st = res.stats;
    ExtractCost& cost = res.cost;
    st.n_layer = L, st.n_head = H, st.head_dim = d;
    st.mean.assign(size_t(LH * d), 0.f);
    std::vector<double> mean_acc(size_t(LH * d), 0.0);
    const bool lrp = p.method == Method::kLrp;
    if (lrp) {
        STRATA_TRY(relevance_supports(m));
        st.lrp_labels.assign(size_t(LH), 0.0);
        st.lrp_all.assign(size_t(LH), 0.0);
        st.lrp_signed.assign(size_t(LH), 0.0);
    }
    const auto t_start = clock_type::now();
    std::mt19937_64 rng(p.seed);

    // 1. Means over clean prompts (with the LRP relevance pass on the first scored ones).
    int64_t correct = 0, scored = 0;
    if (p.means_from && lrp) return invalid_input("--means-from: not with --method lrp (its forwards give the means)");
    if (p.means_from) {
        if (p.means_from->mean.size() != st.mean.size()) return invalid_input("--means-from: wrong model shape");
        for (size_t k = 0; k < mean_acc.size(); ++k) mean_acc[k] = double(p.means_from->mean[k]);
    }
    const int n_mean = p.means_from ? 0 : p.n_prompts;
    for (int i = 0; i < n_mean; ++i) {
        const Pair& q = task.train[size_t(rng() % task.train.size())];
        const auto demos = sample_demos(task.train, q, p.shots, false, rng);
        const Prompt pr = build_prompt(tok, demos, q);
        if (pr.target < 0) return invalid_input("{}: output '{}' tokenizes to nothing", task.name, q.output);
        auto t0 = clock_type::now();
        auto rec = record_forward(ctx, pr.tokens);
        if (!rec) return rec.error();
        cost.forward_seconds += since(t0);
        ++cost.forward_passes;
        cost.tokens_evaluated += int64_t(pr.tokens.size());
        for (int64_t l = 0; l < L; ++l) {
            const auto& att = rec->layers[size_t(l)].att;
            for (int64_t j = 0; j < H * d; ++j) mean_acc[size_t(l * H * d + j)] += att[size_t(j)];
        }
        const auto& lg = rec->logits;
        if (in_top(lg, pr.target, 1)) ++correct;
        if (lrp && scored < p.n_score_prompts && (p.filter_top == 0 || in_top(lg, pr.target, p.filter_top))) {
            t0 = clock_type::now();
            const Relevance r = relevance_pass(m, *rec, pr.target, pr.label_pos, Rules::kLrp);
            cost.relevance_seconds += since(t0);
            ++cost.relevance_passes;
            for (int64_t k = 0; k < LH; ++k) {
                st.lrp_labels[size_t(k)] += r.score_labels[size_t(k)];
                st.lrp_all[size_t(k)] += r.score_all[size_t(k)];
                st.lrp_signed[size_t(k)] += r.score_signed[size_t(k)];
            }
            ++scored;
        }
        if (progress) progress(lrp ? "forward+relevance" : "mean activations", i + 1, p.n_prompts);
    }
    if (p.means_from) {
        for (size_t k = 0; k < mean_acc.size(); ++k) st.mean[k] = float(mean_acc[k]);
        st.n_mean_prompts = p.means_from->n_mean_prompts;
        st.icl_accuracy = p.means_from->icl_accuracy;
    } else {
        for (size_t k = 0; k < mean_acc.size(); ++k) st.mean[k] = float(mean_acc[k] / double(p.n_prompts));
        st.n_mean_prompts = p.n_prompts;
        st.icl_accuracy = double(correct) / double(p.n_prompts);
    }
    if (lrp) {
        if (scored == 0)
            return invalid_input("{}: the model never ranked the answer in its top {} over {} prompts; nothing to score "
                                 "(--filter-top 0 scores every prompt)", task.name, p.filter_top, p.n_prompts);
        for (auto* s : {&st.lrp_labels, &st.lrp_all, &st.lrp_signed})
            for (double& x : *s) x /= double(scored);
        st.n_score_prompts = scored;
    }

    // 2. CIE over corrupted (shuffled-label) prompts: prefix once, then the last token per head.
    if (p.method == Method::kCie) {
        st.cie.assign(size_t(LH), 0.0);
        std::vector<std::vector<float>> wo(static_cast<size_t>(L));
        for (int64_t l = 0; l < L; ++l) wo[size_t(l)] = dequantize(m.layers[size_t(l)].wo);
        const int64_t total = int64_t(p.n_score_prompts) * (LH + 1);
        int64_t done = 0;
        for (int i = 0; i < p.n_score_prompts; ++i) {
            const Pair& q = task.train[size_t(rng() % task.train.size())];
            const auto demos = sample_demos(task.train, q, p.shots, true, rng);
            const Prompt pr = build_prompt(tok, demos, q);
            const int64_t T = int64_t(pr.tokens.size());
            const std::span<const int32_t> all(pr.tokens), last = all.subspan(size_t(T - 1));
            auto t0 = clock_type::now();
            ctx.clear_hooks();
            ctx.truncate(0);
            if (auto r = ctx.eval(all.first(size_t(T - 1))); !r) return r.error();
            auto base = ctx.eval(last);
            if (!base) return base.error();
            const double p0 = prob_of(*base, pr.target);
            ++cost.forward_passes;
            cost.tokens_evaluated += T;
            cost.forward_seconds += since(t0);
            t0 = clock_type::now();
            for (int64_t l = 0; l < L; ++l)
                for (int64_t h = 0; h < H; ++h) {
                    PatchHook hook(int(l), int(h), d, &st.mean[size_t((l * H + h) * d)], wo[size_t(l)]);
                    ctx.truncate(T - 1);
                    ctx.clear_hooks();
                    ctx.add_matmul_hook(&hook);
                    auto r = ctx.eval(last);
                    ctx.clear_hooks();
                    if (!r) return r.error();
                    st.cie[size_t(l * H + h)] += prob_of(*r, pr.target) - p0;
                    ++cost.patched_runs;
                    ++cost.tokens_evaluated;
                    if (progress && (++done % 9 == 0)) progress("causal indirect effect", done, total);
                }
            cost.patch_seconds += since(t0);
            if (progress) progress("causal indirect effect", ++done, total);
        }
        for (double& x : st.cie) x /= double(p.n_score_prompts);
        st.n_score_prompts = p.n_score_prompts;
    }
    ctx.truncate(0);

    // 3. Heads and vector.
    auto heads = select_heads(m, st, p.method, p.score, p.heads, p.seed);
    if (!heads) return heads.error();
    res.heads = *heads;
    res.fv = build_vector(m, st, res.heads, layer, p.distributed, p.dtype, id, task.name);
    cost.seconds = since(t_start);
    return res;
}

std::string stats_to_json(const HeadStats& st, const ExtractCost& cost, const std::string& task) {
    nlohmann::json j;
    j["task"] = task;
    j["n_layer"] = st.n_layer;
    j["n_head"] = st.n_head;
    j["head_dim"] = st.head_dim;
    j["n_mean_prompts"] = st.n_mean_prompts;
    j["n_score_prompts"] = st.n_score_prompts;
    j["icl_accuracy"] = st.icl_accuracy;
    j["mean"] = st.mean;
    if (!st.cie.empty()) j["cie"] = st.cie;
    if (!st.lrp_labels.empty()) {
        j["lrp_labels"] = st.lrp_labels;
        j["lrp_all"] = st.lrp_all;
        j["lrp_signed"] = st.lrp_signed;
    }
    j["cost"] = {{"forward_passes", cost.forward_passes},     {"patched_runs", cost.patched_runs},
                 {"relevance_passes", cost.relevance_passes}, {"tokens_evaluated", cost.tokens_evaluated},
                 {"fpe", cost.fpe()},                         {"seconds", cost.seconds},
                 {"forward_seconds", cost.forward_seconds},   {"relevance_seconds", cost.relevance_seconds},
                 {"patch_seconds", cost.patch_seconds}};
    return j.dump();
}

Result<HeadStats> stats_from_json(const std::string& text, const model::Model& m) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return invalid_input("head stats: not a JSON object");
    HeadStats st;
    try {
        st.n_layer = j.at("n_layer").get<int64_t>();
        st.n_head = j.at("n_head").get<int64_t>();
        st.head_dim = j.at("head_dim").get<int64_t>();
        if (st.n_layer != m.hp.n_layer || st.n_head != m.hp.n_head || st.head_dim != m.hp.head_dim)
            return invalid_input("head stats were made for another model shape ({}x{}x{})", st.n_layer, st.n_head, st.head_dim);
        st.mean = j.at("mean").get<std::vector<float>>();
        const size_t LH = size_t(st.n_layer * st.n_head);
        if (st.mean.size() != LH * size_t(st.head_dim)) return invalid_input("head stats: 'mean' has the wrong size");
        for (auto [key, dst] : {std::pair{"cie", &st.cie}, {"lrp_labels", &st.lrp_labels}, {"lrp_all", &st.lrp_all},
                                {"lrp_signed", &st.lrp_signed}})
            if (j.contains(key)) {
                *dst = j.at(key).get<std::vector<double>>();
                if (dst->size() != LH) return invalid_input("head stats: '{}' has the wrong size", key);
            }
        st.n_mean_prompts = j.value("n_mean_prompts", int64_t(0));
        st.n_score_prompts = j.value("n_score_prompts", int64_t(0));
        st.icl_accuracy = j.value("icl_accuracy", 0.0);
    } catch (const nlohmann::json::exception& e) {
        return invalid_input("head stats: {}", e.what());
    }
    for (float v : st.mean)
        if (!std::isfinite(v)) return invalid_input("head stats: non-finite mean value");
    return st;
}

}  // namespace strata::fv

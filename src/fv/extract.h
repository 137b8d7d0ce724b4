// Function-vector extraction (shared/specs/function-vectors.md §2-3):
//   1. mean head outputs abar_{l,h} at the last token over N clean n-shot prompts;
//   2. head ranking: causal indirect effect (Todd: per corrupted prompt one clean run plus one
//      run per head with that head's output replaced by its mean), or LRP relevance (FFFV: one
//      forward plus one AttnLRP relevance pass per prompt, the forward shared with step 1);
//   3. the vector from the top-k heads: aggregated (sum of W_O[:, h] abar_{l,h}, added at one
//      layer) or distributed (each abar_{l,h} at its own head).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "fv/fvec.h"
#include "fv/tasks.h"
#include "model/forward.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace strata::fv {

enum class Method { kMean, kCie, kLrp, kRandom };
// LRP head score (spec §3.5): (a) label positions, (b) all earlier positions, (c) signed.
enum class LrpScore { kLabels, kAll, kSigned };

Result<Method> parse_method(const std::string& s);
Result<LrpScore> parse_lrp_score(const std::string& s);
const char* method_name(Method m);
const char* lrp_score_name(LrpScore s);

struct HeadStats;

struct ExtractParams {
    Method method = Method::kLrp;
    LrpScore score = LrpScore::kLabels;
    int heads = 10;          // k; for kMean 0 = all heads, else the k largest ||W_O abar||
    int layer = -1;          // aggregated injection layer; -1 = n_layer / 3
    bool distributed = false;
    int n_prompts = 100;     // clean prompts for the means (and the LRP forwards)
    int n_score_prompts = 25;  // prompts scored by CIE (shuffled labels) or LRP (clean)
    int shots = 10;
    int filter_top = 5;      // LRP scores only prompts whose answer is in the model's top-k (FFFV); 0 = all
    uint64_t seed = 1;
    ValueType dtype = ValueType::kF16;
    // Reuse mean head outputs (and their prompt count / ICL accuracy) from an earlier run
    // instead of running the mean prompts again (not with kLrp, whose forwards are shared).
    const HeadStats* means_from = nullptr;
};

// Work done, counted the way the methods define it.
struct ExtractCost {
    int64_t forward_passes = 0;    // full prompt forwards (means, CIE clean runs)
    int64_t patched_runs = 0;      // CIE: one per head per corrupted prompt (Todd counts each as a forward pass)
    int64_t relevance_passes = 0;  // LRP
    int64_t tokens_evaluated = 0;  // tokens actually run through the model
    double seconds = 0, forward_seconds = 0, relevance_seconds = 0, patch_seconds = 0;
    // Forward-pass equivalents: forwards + patched runs + 2 per relevance pass (a full
    // backward's usual price; our last-position pass costs less, see relevance_seconds).
    double fpe() const { return double(forward_passes + patched_runs) + 2.0 * double(relevance_passes); }
};

// Per-head statistics from which any vector can be built without further passes.
struct HeadStats {
    int64_t n_layer = 0, n_head = 0, head_dim = 0;
    std::vector<float> mean;  // [L][H][d]
    // Scores [L*H], empty when not computed.
    std::vector<double> cie, lrp_labels, lrp_all, lrp_signed;
    int64_t n_mean_prompts = 0, n_score_prompts = 0;
    double icl_accuracy = 0;  // clean n-shot top-1 over the mean prompts
};

struct ExtractResult {
    HeadStats stats;
    std::vector<std::pair<int, int>> heads;  // selected (layer, head), best first
    FunctionVector fv;
    ExtractCost cost;
};

using Progress = std::function<void(const std::string& phase, int64_t done, int64_t total)>;

// ctx must be an exact-mode context with an fp32 KV cache; its hooks are cleared.
Result<ExtractResult> extract(const model::Model& m, model::Context& ctx, const Tokenizer& tok, const Task& task,
                              const ExtractParams& p, const ModelIdentity& id, const Progress& progress = {});

// Top-k (layer, head) by score (descending; ties by index).
std::vector<std::pair<int, int>> top_heads(const std::vector<double>& score, int64_t n_head, int k);
// Head selection for a method from stats (kRandom uses seed).
Result<std::vector<std::pair<int, int>>> select_heads(const model::Model& m, const HeadStats& st, Method method,
                                                      LrpScore score, int k, uint64_t seed);
// Builds the blob from the selected heads.
FunctionVector build_vector(const model::Model& m, const HeadStats& st, const std::vector<std::pair<int, int>>& heads,
                            int layer, bool distributed, ValueType dtype, const ModelIdentity& id, const std::string& task);

// Head statistics as JSON (for `strata fv build` and the docs) and back.
std::string stats_to_json(const HeadStats& st, const ExtractCost& cost, const std::string& task);
Result<HeadStats> stats_from_json(const std::string& text, const model::Model& m);

}  // namespace strata::fv

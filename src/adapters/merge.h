// Merging several LoRA adapters into one standard rank-r LoRA. A MergeMethod combines the
// adapters' updates for one module (layer x projection); the driver (merge.cpp) runs every
// module on a thread pool, reports progress and returns the merged adapter with scale 1
// (lora_alpha = r). Methods live one per file in merge/, listed in registry.cpp. Semantics
// follow shared/specs/tada.md §3 (mergekit by default) and §2 (TaDA).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/linalg.h"
#include "adapters/lora.h"

namespace strata { class ThreadPool; }

namespace strata::adapters {

// Every knob, with its default; CLI flags map onto these one to one (cli/cmd_merge.cpp).
struct MergeOptions {
    std::vector<double> weights;   // one per adapter; empty = the method's default
    double density = -1;           // TIES/DARE keep fraction; < 0 = the method's default
    double lambda = 1.0;           // global multiplier on the merged update
    uint64_t seed = 0;             // DARE masks and the randomized SVD
    int64_t rank = 0;              // output rank; 0 = the largest input rank
    bool exact_svd = false;        // BDCSVD instead of the randomized range finder
    bool dare_l1_rescale = false;  // mergekit's L1-norm matching instead of 1/density
    bool peft_ties = false;        // PEFT semantics: sign on unweighted tensors, divide by count
    // TaDA (§2.8)
    std::string tada_mode = "full";  // full | gating_only | subspace_only | ramp | full_dense
    double kappa = 0.2;              // conflict threshold on the rank-1 cosine
    double g_max = 0.9;              // gate bound
    bool center = true;              // median centring of the log-ratio per projection type
    int smooth_window = 1;           // centred moving average over depth (1 = off)
    bool probe_global = false;       // probe=global_calibrated (raw norms / per-type mean)
};

// Per-module gates for the task (adapter 0) and domain (adapter 1), [n_layer][kNumRoles].
struct Gates {
    int64_t n_layer = 0;
    std::vector<double> g_t, g_d, p_t, p_d;
    double& t(int64_t l, int r) { return g_t[size_t(l * kNumRoles + r)]; }
    double t(int64_t l, int r) const { return g_t[size_t(l * kNumRoles + r)]; }
    double d(int64_t l, int r) const { return g_d[size_t(l * kNumRoles + r)]; }
};

struct ModuleJob {
    int layer = 0;
    WeightRole role = WeightRole::kQ;
    int64_t d_out = 0, d_in = 0, r_out = 0;
    std::vector<const LoraModule*> parts;  // one per adapter; nullptr when it lacks the module
};

struct ModuleResult {
    Factors f;
    int dropped = 0;            // TaDA: components dropped as conflicting
    double dropped_energy = 0;  // TaDA: fraction of gated energy dropped
};

class MergeMethod {
public:
    virtual ~MergeMethod() = default;
    virtual std::string_view name() const = 0;
    // Validates options against the adapter count (weights, density range, mode names).
    virtual Status check(const MergeOptions& o, size_t n_adapters) const = 0;
    // TaDA needs gates (probe or ramp) before the module loop.
    virtual bool needs_gates() const { return false; }
    virtual Result<ModuleResult> merge_module(const MergeOptions& o, const ModuleJob& job, const Gates* gates) const = 0;
};

// registry.cpp: the explicit list of methods.
std::vector<std::string> merge_method_names();
Result<std::unique_ptr<MergeMethod>> make_merge_method(std::string_view name);

struct MergeStats {
    double seconds = 0;
    double mean_kept_energy = 1, min_kept_energy = 1;
    int64_t modules = 0, dropped_components = 0;
    std::vector<std::string> module_log;  // one line per module (TaDA drops, kept energy)
};

using ProgressFn = std::function<void(int64_t done, int64_t total)>;

// Merges `ads` (all checked against `shape`) module by module. The union of targets is
// merged; the output has scale 1 and rank o.rank (or the largest input rank).
Result<LoraAdapter> merge_adapters(const MergeMethod& m, const std::vector<LoraAdapter>& ads, const ModelShape& shape,
                                   const MergeOptions& o, const Gates* gates, ThreadPool& pool,
                                   const ProgressFn& progress, MergeStats* stats);

// Helpers shared by the methods (merge_util.cpp).
double weight_of(const MergeOptions& o, size_t i, double dflt);
// A module's job seed: mixes the user seed with (adapter, layer, role) so masks do not
// depend on thread scheduling.
uint64_t module_seed(uint64_t seed, size_t adapter, int layer, WeightRole r);
// Exact factored sum: B_cat = [c_i s_i B_i], A_cat = [A_i], refactored to job.r_out.
Factors weighted_sum_factors(const ModuleJob& job, const std::vector<double>& coef);
Status check_density(double d, std::string_view method);
Status check_weights(const MergeOptions& o, size_t n, std::string_view method);

}  // namespace strata::adapters

// TaDA gates (shared/specs/tada.md §2.2-2.4): the probe that measures how much of each
// adapter's singular energy domain activations reach, the calibration that turns the two
// probe tables into per-(layer, projection) gates, and the data-free depth ramp. Adapter 0
// is the task adapter T and adapter 1 the domain adapter D throughout.
#pragma once

#include <cstdint>
#include <vector>

#include "adapters/merge.h"

namespace strata::model { class Context; }

namespace strata::adapters {

// ||dW x|| for one input row x (len d_in) without forming dW: y = A x, then
// |s| sqrt(y^T G y) with G = B^T B ([rank][rank], precomputed by gram_b). float64.
std::vector<double> gram_b(const LoraModule& m);
double response_norm(const LoraModule& m, const std::vector<double>& g, const float* x);
// ||dW||_F = |s| sqrt(trace(G A A^T)).
double frobenius_norm(const LoraModule& m, const std::vector<double>& g);

// Accumulated probe sums per module [n_layer][kNumRoles] for T and D.
struct ProbeSums {
    int64_t n_layer = 0;
    std::vector<double> rho_t, rho_d, e_t, e_d;  // sums of ||dW h||/||h|| and of ||dW h||
    std::vector<int64_t> n;                      // rows seen
};

// Runs the base model (no adapters; its hooks are cleared afterwards) over the prompts and
// collects the probe sums for every module both adapters target. Prompts are token ids,
// at most 128 tokens each (longer ones are cut).
Result<ProbeSums> run_probe(model::Context& ctx, const LoraAdapter& t, const LoraAdapter& d,
                            const std::vector<std::vector<int32_t>>& prompts);

// p tables from probe sums (normalised response, or global_calibrated when o.probe_global),
// then the calibrated gates (log-ratio, median centring per type, optional smoothing,
// temperature that maps the extreme layer to g_max, clip to [1 - g_max, g_max]). Modules
// not targeted by both adapters get NaN p values and gate 0.5 (merge_module treats them as
// single-adapter modules with gate 1 anyway).
Gates probe_gates(const ProbeSums& s, const LoraAdapter& t, const LoraAdapter& d, const MergeOptions& o);
Gates calibrate_gates(int64_t n_layer, const std::vector<double>& p_t, const std::vector<double>& p_d,
                      const MergeOptions& o);
// g_T(l) = g_max - (2 g_max - 1) l / (L - 1) for every projection; g_D = 1 - g_T.
Gates ramp_gates(int64_t n_layer, double g_max);

}  // namespace strata::adapters

// linear (mergekit `linear`, normalize on): dM = sum_i w_i dW_i / sum_i w_i, then x lambda.
// A missing module counts as a zero update (mergekit folds the LoRA into the weights, so
// an untouched module equals the base). Rank <= sum of ranks, so re-factoring is exact.
#include "adapters/merge.h"

namespace strata::adapters {
namespace {
class LinearMerge final : public MergeMethod {
public:
    std::string_view name() const override { return "linear"; }
    Status check(const MergeOptions& o, size_t n) const override {
        STRATA_TRY(check_weights(o, n, name()));
        double s = 0;
        for (size_t i = 0; i < n; ++i) s += weight_of(o, i, 1.0);
        if (s == 0) return invalid_input("--weights: linear needs weights with a non-zero sum");
        return ok_status();
    }
    Result<ModuleResult> merge_module(const MergeOptions& o, const ModuleJob& job, const Gates*) const override {
        double s = 0;
        for (size_t i = 0; i < job.parts.size(); ++i) s += weight_of(o, i, 1.0);
        std::vector<double> c(job.parts.size());
        for (size_t i = 0; i < c.size(); ++i) c[i] = o.lambda * weight_of(o, i, 1.0) / s;
        return ModuleResult{weighted_sum_factors(job, c)};
    }
};
}  // namespace
std::unique_ptr<MergeMethod> make_linear_merge() { return std::make_unique<LinearMerge>(); }
}  // namespace strata::adapters

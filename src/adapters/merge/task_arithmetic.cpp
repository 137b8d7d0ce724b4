// task_arithmetic (mergekit, no normalisation): dM = lambda * sum_i w_i dW_i, w = 1 by
// default. With w = 1, lambda = 1 and --rank = sum of ranks this is PEFT's exact `cat`.
#include "adapters/merge.h"

namespace strata::adapters {
namespace {
class TaskArithmeticMerge final : public MergeMethod {
public:
    std::string_view name() const override { return "task_arithmetic"; }
    Status check(const MergeOptions& o, size_t n) const override { return check_weights(o, n, name()); }
    Result<ModuleResult> merge_module(const MergeOptions& o, const ModuleJob& job, const Gates*) const override {
        std::vector<double> c(job.parts.size());
        for (size_t i = 0; i < c.size(); ++i) c[i] = o.lambda * weight_of(o, i, 1.0);
        return ModuleResult{weighted_sum_factors(job, c)};
    }
};
}  // namespace
std::unique_ptr<MergeMethod> make_task_arithmetic_merge() { return std::make_unique<TaskArithmeticMerge>(); }
}  // namespace strata::adapters

// dare_ties (mergekit `dare_ties`: normalize = false, rescale = true): DARE-sparsify every
// dense update, weight, elect the sign by the weighted sum, and add the agreeing entries
// without dividing; x lambda. Rescale is 1/density by default (spec §7.9), --dare-l1 for
// mergekit's L1 matching; --peft-ties for PEFT's variant (unweighted sign, divide by count).
#include "adapters/merge.h"
#include "adapters/merge/sparsify.h"

namespace strata::adapters {
namespace {
class DareTiesMerge final : public MergeMethod {
public:
    std::string_view name() const override { return "dare_ties"; }
    Status check(const MergeOptions& o, size_t n) const override {
        STRATA_TRY(check_weights(o, n, name()));
        return check_density(o.density < 0 ? 0.5 : o.density, name());
    }
    Result<ModuleResult> merge_module(const MergeOptions& o, const ModuleJob& job, const Gates*) const override {
        const double density = o.density < 0 ? 0.5 : o.density;
        std::vector<std::vector<float>> sparse, weighted;
        std::vector<double> w;
        for (size_t i = 0; i < job.parts.size(); ++i) {
            if (!job.parts[i]) continue;
            std::vector<float> t = dense_delta(*job.parts[i]);
            dare_drop(t, density, module_seed(o.seed, i, job.layer, job.role), o.dare_l1_rescale);
            const double wi = weight_of(o, i, 1.0);
            std::vector<float> tw(t.size());
            for (size_t e = 0; e < t.size(); ++e) tw[e] = float(wi * t[e]);
            sparse.push_back(std::move(t));
            weighted.push_back(std::move(tw));
            w.push_back(wi);
        }
        std::vector<float> m = disjoint_merge(weighted, w, o.peft_ties ? &sparse : nullptr,
                                              o.peft_ties ? Divisor::kCount : Divisor::kNone);
        for (float& v : m) v = float(o.lambda * v);
        return ModuleResult{compress_dense(m, job.d_out, job.d_in, job.r_out, o.exact_svd,
                                           module_seed(o.seed, 99, job.layer, job.role))};
    }
};
}  // namespace
std::unique_ptr<MergeMethod> make_dare_ties_merge() { return std::make_unique<DareTiesMerge>(); }
}  // namespace strata::adapters

// dare (DARE, arXiv 2311.03099; mergekit `dare_linear`): drop each entry of each dense
// update with probability 1 - density, rescale survivors by 1/density (DARE paper, PEFT;
// --dare-l1 for mergekit's L1 matching), then dM = lambda * sum_i w_i DARE(dW_i) without
// normalisation. Masks are seeded per (seed, adapter, layer, projection).
#include "adapters/merge.h"
#include "adapters/merge/sparsify.h"

namespace strata::adapters {
namespace {
class DareMerge final : public MergeMethod {
public:
    std::string_view name() const override { return "dare"; }
    Status check(const MergeOptions& o, size_t n) const override {
        STRATA_TRY(check_weights(o, n, name()));
        return check_density(o.density < 0 ? 0.5 : o.density, name());
    }
    Result<ModuleResult> merge_module(const MergeOptions& o, const ModuleJob& job, const Gates*) const override {
        const double density = o.density < 0 ? 0.5 : o.density;
        std::vector<double> m(size_t(job.d_out * job.d_in), 0.0);
        for (size_t i = 0; i < job.parts.size(); ++i) {
            if (!job.parts[i]) continue;
            std::vector<float> t = dense_delta(*job.parts[i]);
            dare_drop(t, density, module_seed(o.seed, i, job.layer, job.role), o.dare_l1_rescale);
            const double wi = weight_of(o, i, 1.0);
            for (size_t e = 0; e < t.size(); ++e) m[e] += wi * t[e];
        }
        std::vector<float> mf(m.size());
        for (size_t e = 0; e < m.size(); ++e) mf[e] = float(o.lambda * m[e]);
        return ModuleResult{compress_dense(mf, job.d_out, job.d_in, job.r_out, o.exact_svd,
                                           module_seed(o.seed, 99, job.layer, job.role))};
    }
};
}  // namespace
std::unique_ptr<MergeMethod> make_dare_merge() { return std::make_unique<DareMerge>(); }
}  // namespace strata::adapters

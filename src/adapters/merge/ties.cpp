// ties (TIES-Merging, arXiv 2306.01708; mergekit `ties`): trim each dense update to its top
// density fraction by magnitude, weight, elect the sign by the weighted sum, and average the
// agreeing entries dividing by the sum of their weights; x lambda. --peft-ties switches to
// PEFT's variant (sign from the unweighted trimmed tensors, divide by the agreeing count).
// The dense result is compressed back to rank r (linalg.h).
#include "adapters/merge.h"
#include "adapters/merge/sparsify.h"

namespace strata::adapters {
namespace {
class TiesMerge final : public MergeMethod {
public:
    std::string_view name() const override { return "ties"; }
    Status check(const MergeOptions& o, size_t n) const override {
        STRATA_TRY(check_weights(o, n, name()));
        return check_density(o.density < 0 ? 0.2 : o.density, name());
    }
    Result<ModuleResult> merge_module(const MergeOptions& o, const ModuleJob& job, const Gates*) const override {
        const double density = o.density < 0 ? 0.2 : o.density;
        std::vector<std::vector<float>> trimmed, weighted;
        std::vector<double> w;
        for (size_t i = 0; i < job.parts.size(); ++i) {
            if (!job.parts[i]) continue;
            std::vector<float> t = dense_delta(*job.parts[i]);
            trim_top_k(t, density);
            const double wi = weight_of(o, i, 1.0);
            std::vector<float> tw(t.size());
            for (size_t e = 0; e < t.size(); ++e) tw[e] = float(wi * t[e]);
            trimmed.push_back(std::move(t));
            weighted.push_back(std::move(tw));
            w.push_back(wi);
        }
        std::vector<float> m = disjoint_merge(weighted, w, o.peft_ties ? &trimmed : nullptr,
                                              o.peft_ties ? Divisor::kCount : Divisor::kWeightSum);
        for (float& v : m) v = float(o.lambda * v);
        return ModuleResult{compress_dense(m, job.d_out, job.d_in, job.r_out, o.exact_svd,
                                           module_seed(o.seed, 99, job.layer, job.role))};
    }
};
}  // namespace
std::unique_ptr<MergeMethod> make_ties_merge() { return std::make_unique<TiesMerge>(); }
}  // namespace strata::adapters

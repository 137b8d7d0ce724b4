// The merge driver: builds one job per module in the union of the adapters' targets, runs
// the method on every job in parallel (modules are independent; per-module seeds keep the
// result independent of scheduling) and assembles the merged adapter.
#include "adapters/merge.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "base/thread_pool.h"

namespace strata::adapters {

double weight_of(const MergeOptions& o, size_t i, double dflt) { return o.weights.empty() ? dflt : o.weights[i]; }

uint64_t module_seed(uint64_t seed, size_t adapter, int layer, WeightRole r) {
    // splitmix64 over the packed key: cheap, and distinct keys give unrelated streams.
    uint64_t z = seed ^ (uint64_t(adapter) << 48) ^ (uint64_t(uint32_t(layer)) << 8) ^ uint64_t(role_index(r));
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

Factors weighted_sum_factors(const ModuleJob& job, const std::vector<double>& coef) {
    int64_t k = 0;
    for (const LoraModule* p : job.parts)
        if (p) k += p->rank;
    Mat b(job.d_out, k), a(k, job.d_in);
    int64_t c = 0;
    for (size_t i = 0; i < job.parts.size(); ++i) {
        const LoraModule* p = job.parts[i];
        if (!p) continue;
        const double s = coef[i] * p->scale;
        for (int64_t j = 0; j < p->rank; ++j, ++c) {
            for (int64_t o = 0; o < job.d_out; ++o) b.at(o, c) = s * p->b[size_t(o * p->rank + j)];
            for (int64_t x = 0; x < job.d_in; ++x) a.at(c, x) = p->a[size_t(j * job.d_in + x)];
        }
    }
    return refactor(b, a, job.r_out);
}

Status check_density(double d, std::string_view method) {
    if (!(d > 0 && d <= 1)) return invalid_input("--density: must be in (0, 1] for {} (got {})", method, d);
    return ok_status();
}

Status check_weights(const MergeOptions& o, size_t n, std::string_view method) {
    if (!o.weights.empty() && o.weights.size() != n)
        return invalid_input("--weights: {} adapters but {} weights", n, o.weights.size());
    for (double w : o.weights)
        if (!std::isfinite(w)) return invalid_input("--weights: weights must be finite numbers");
    return ok_status();
}

Result<LoraAdapter> merge_adapters(const MergeMethod& m, const std::vector<LoraAdapter>& ads, const ModelShape& shape,
                                   const MergeOptions& o, const Gates* gates, ThreadPool& pool,
                                   const ProgressFn& progress, MergeStats* stats) {
    const auto t0 = std::chrono::steady_clock::now();
    if (ads.empty()) return invalid_input("--adapter: at least one adapter is needed");
    STRATA_TRY(m.check(o, ads.size()));
    if (m.needs_gates() && !gates) return invalid_input("{}: gates are required", m.name());
    if (o.rank < 0) return invalid_input("--rank: must be positive (got {})", o.rank);
    int64_t r_out = o.rank;
    for (const auto& ad : ads) {
        STRATA_TRY(check_against(ad, shape).with_context(ad.source));
        if (o.rank == 0) r_out = std::max(r_out, ad.max_rank());
    }
    std::map<std::pair<int, int>, ModuleJob> jobs_by_key;
    for (size_t i = 0; i < ads.size(); ++i)
        for (const auto& mod : ads[i].modules) {
            ModuleJob& j = jobs_by_key[{mod.layer, role_index(mod.role)}];
            j.layer = mod.layer;
            j.role = mod.role;
            j.d_out = mod.d_out;
            j.d_in = mod.d_in;
            j.r_out = r_out;
            j.parts.resize(ads.size(), nullptr);
            j.parts[i] = &mod;
        }
    std::vector<ModuleJob> jobs;
    for (auto& [k, j] : jobs_by_key) jobs.push_back(std::move(j));
    const int64_t n = int64_t(jobs.size());
    std::vector<Result<ModuleResult>> results(size_t(n), Result<ModuleResult>(Status(ErrorCode::kInternal, "not run")));
    std::atomic<int64_t> done{0};
    std::mutex mu;
    pool.parallel_for(n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            results[size_t(i)] = m.merge_module(o, jobs[size_t(i)], gates);
            if (progress) {  // counted under the lock so the callback sees 1, 2, ..., n in order
                std::lock_guard<std::mutex> lk(mu);
                progress(++done, n);
            }
        }
    });
    LoraAdapter out;
    out.base_model = ads[0].base_model;
    out.source = std::string(m.name());
    MergeStats st;
    double kept_sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        auto& r = results[size_t(i)];
        const ModuleJob& j = jobs[size_t(i)];
        LoraModule mod;
        mod.layer = j.layer;
        mod.role = j.role;
        mod.d_out = j.d_out;
        mod.d_in = j.d_in;
        if (!r) return r.error().with_context(mod.name());
        mod.rank = r->f.rank;
        mod.scale = 1.f;
        mod.a = std::move(r->f.a);
        mod.b = std::move(r->f.b);
        kept_sum += r->f.kept_energy;
        st.min_kept_energy = std::min(st.min_kept_energy, r->f.kept_energy);
        st.dropped_components += r->dropped;
        st.module_log.push_back(fmt::format("{} kept_energy {:.4f} dropped {} ({:.4f} of gated energy)", mod.name(),
                                            r->f.kept_energy, r->dropped, r->dropped_energy));
        out.modules.push_back(std::move(mod));
    }
    st.modules = n;
    st.mean_kept_energy = n ? kept_sum / double(n) : 1;
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (stats) *stats = std::move(st);
    out.sort();
    return out;
}

}  // namespace strata::adapters

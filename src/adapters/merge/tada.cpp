// tada (TaDA, arXiv 2606.05016; our concrete reading in shared/specs/tada.md §2.5-2.6):
// per module, split each gated update into rank-1 singular components, drop the weaker side
// of every pair whose Frobenius cosine C_ij = (u_Ti.u_Dj)(v_Ti.v_Dj) <= -kappa, and add the
// rest: dM = lambda (sum_kept a_i u_i v_i^T + sum_kept b_j u_j v_j^T), a = g_T s_T, b = g_D s_D.
// Adapter 0 is the task adapter, adapter 1 the domain adapter. Ablations (--tada-mode):
// full, gating_only (kappa = +inf), subspace_only (gates 0.5), ramp (data-free gates; the
// driver supplies them), full_dense (no truncation: rank r_T + r_D, zero-padded).
#include "adapters/merge.h"

#include <cmath>
#include <limits>

namespace strata::adapters {
namespace {

constexpr const char* kModes[] = {"full", "gating_only", "subspace_only", "ramp", "full_dense"};

class TadaMerge final : public MergeMethod {
public:
    std::string_view name() const override { return "tada"; }
    bool needs_gates() const override { return true; }
    Status check(const MergeOptions& o, size_t n) const override {
        if (n != 2) return invalid_input("--adapter: tada merges exactly 2 adapters (task, then domain), got {}", n);
        if (!o.weights.empty()) return invalid_input("--weights: tada sets its weights from gates; use --lambda");
        bool known = false;
        for (const char* m : kModes) known = known || o.tada_mode == m;
        if (!known)
            return invalid_input("--tada-mode: unknown mode \"{}\" (known: full, gating_only, subspace_only, ramp, full_dense)",
                                 o.tada_mode);
        if (!(o.kappa >= 0)) return invalid_input("--kappa: must be >= 0 (got {})", o.kappa);
        if (!(o.g_max >= 0.5 && o.g_max < 1)) return invalid_input("--gmax: must be in [0.5, 1) (got {})", o.g_max);
        return ok_status();
    }

    Result<ModuleResult> merge_module(const MergeOptions& o, const ModuleJob& job, const Gates* gates) const override {
        const LoraModule *t = job.parts[0], *d = job.parts[1];
        const bool dense = o.tada_mode == "full_dense";
        const int64_t r_out = dense ? (t ? t->rank : 0) + (d ? d->rank : 0) : job.r_out;
        if (!t || !d) {  // one adapter only: it gets gate 1 (spec §2.3 item 6)
            ModuleJob j = job;
            j.r_out = r_out;
            return ModuleResult{weighted_sum_factors(j, {t ? o.lambda : 0.0, d ? o.lambda : 0.0})};
        }
        const int ri = role_index(job.role);
        double gt = 0.5, gd = 0.5;
        if (o.tada_mode != "subspace_only") {
            gt = gates->t(job.layer, ri);
            gd = gates->d(job.layer, ri);
        }
        const double kappa = o.tada_mode == "gating_only" ? std::numeric_limits<double>::infinity() : o.kappa;
        const Svd st = svd_of(*t), sd = svd_of(*d);
        const size_t nt = st.s.size(), nd = sd.s.size();
        std::vector<double> a(nt), b(nd);
        for (size_t i = 0; i < nt; ++i) a[i] = gt * st.s[i];
        for (size_t j = 0; j < nd; ++j) b[j] = gd * sd.s[j];
        std::vector<uint8_t> drop_t(nt, 0), drop_d(nd, 0);
        for (size_t i = 0; i < nt; ++i)
            for (size_t j = 0; j < nd; ++j) {
                double uu = 0, vv = 0;
                for (int64_t x = 0; x < job.d_out; ++x) uu += st.u.at(x, int64_t(i)) * sd.u.at(x, int64_t(j));
                for (int64_t x = 0; x < job.d_in; ++x) vv += st.v.at(x, int64_t(i)) * sd.v.at(x, int64_t(j));
                if (uu * vv > -kappa) continue;
                // Conflict: drop the weaker gated component; on an exact tie keep the side
                // with the larger gate (the domain side when the gates are equal too).
                const bool drop_task = a[i] < b[j] || (a[i] == b[j] && gt <= gd);
                (drop_task ? drop_t[i] : drop_d[j]) = 1;
            }
        ModuleResult res;
        double total = 0, lost = 0;
        int64_t k = 0;
        for (size_t i = 0; i < nt; ++i) {
            total += a[i] * a[i];
            if (drop_t[i]) { lost += a[i] * a[i]; ++res.dropped; } else { ++k; }
        }
        for (size_t j = 0; j < nd; ++j) {
            total += b[j] * b[j];
            if (drop_d[j]) { lost += b[j] * b[j]; ++res.dropped; } else { ++k; }
        }
        res.dropped_energy = total > 0 ? lost / total : 0;
        // B_cat = [U_T diag(lambda a), U_D diag(lambda b)] over kept components, A_cat = [V_T^T; V_D^T].
        Mat bc(job.d_out, k), ac(k, job.d_in);
        int64_t c = 0;
        auto put = [&](const Svd& s, const std::vector<double>& g, const std::vector<uint8_t>& drop) {
            for (size_t i = 0; i < g.size(); ++i) {
                if (drop[i]) continue;
                for (int64_t x = 0; x < job.d_out; ++x) bc.at(x, c) = o.lambda * g[i] * s.u.at(x, int64_t(i));
                for (int64_t x = 0; x < job.d_in; ++x) ac.at(c, x) = s.v.at(x, int64_t(i));
                ++c;
            }
        };
        put(st, a, drop_t);
        put(sd, b, drop_d);
        res.f = refactor(bc, ac, r_out);
        return res;
    }

private:
    static Svd svd_of(const LoraModule& m) {
        Mat b(m.d_out, m.rank), a(m.rank, m.d_in);
        for (int64_t o = 0; o < m.d_out; ++o)
            for (int64_t j = 0; j < m.rank; ++j) b.at(o, j) = double(m.scale) * m.b[size_t(o * m.rank + j)];
        for (size_t i = 0; i < m.a.size(); ++i) a.v[i] = m.a[i];
        return lowrank_svd(b, a);
    }
};

}  // namespace
std::unique_ptr<MergeMethod> make_tada_merge() { return std::make_unique<TadaMerge>(); }
}  // namespace strata::adapters

// Probe, calibration and ramp gates for TaDA. The probe is a MatmulHook that only reads the
// matmul inputs; it runs on the base model so both adapters see identical activations
// (spec §7.2) and the result is deterministic.
#include "adapters/gates.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/forward.h"
#include "model/model.h"

namespace strata::adapters {

std::vector<double> gram_b(const LoraModule& m) {
    std::vector<double> g(size_t(m.rank * m.rank), 0.0);
    for (int64_t o = 0; o < m.d_out; ++o)
        for (int64_t i = 0; i < m.rank; ++i)
            for (int64_t j = 0; j < m.rank; ++j)
                g[size_t(i * m.rank + j)] += double(m.b[size_t(o * m.rank + i)]) * m.b[size_t(o * m.rank + j)];
    return g;
}

double response_norm(const LoraModule& m, const std::vector<double>& g, const float* x) {
    std::vector<double> y(size_t(m.rank), 0.0);
    for (int64_t k = 0; k < m.rank; ++k) {
        const float* a = &m.a[size_t(k * m.d_in)];
        double s = 0;
        for (int64_t i = 0; i < m.d_in; ++i) s += double(a[i]) * x[i];
        y[size_t(k)] = s;
    }
    double q = 0;
    for (int64_t i = 0; i < m.rank; ++i)
        for (int64_t j = 0; j < m.rank; ++j) q += y[size_t(i)] * g[size_t(i * m.rank + j)] * y[size_t(j)];
    return std::fabs(double(m.scale)) * std::sqrt(std::max(0.0, q));
}

double frobenius_norm(const LoraModule& m, const std::vector<double>& g) {
    // trace(G A A^T) = sum_ij G_ij (A A^T)_ji
    double tr = 0;
    for (int64_t i = 0; i < m.rank; ++i)
        for (int64_t j = 0; j < m.rank; ++j) {
            double aa = 0;
            for (int64_t x = 0; x < m.d_in; ++x) aa += double(m.a[size_t(j * m.d_in + x)]) * m.a[size_t(i * m.d_in + x)];
            tr += g[size_t(i * m.rank + j)] * aa;
        }
    return std::fabs(double(m.scale)) * std::sqrt(std::max(0.0, tr));
}

namespace {

class ProbeHook final : public model::MatmulHook {
public:
    ProbeHook(const LoraAdapter& t, const LoraAdapter& d, int64_t n_layer) : t_(t), d_(d) {
        s_.n_layer = n_layer;
        const size_t n = size_t(n_layer * kNumRoles);
        s_.rho_t.assign(n, 0);
        s_.rho_d.assign(n, 0);
        s_.e_t.assign(n, 0);
        s_.e_d.assign(n, 0);
        s_.n.assign(n, 0);
        gt_.resize(n);
        gd_.resize(n);
        for (const auto& m : t.modules) gt_[idx(m.layer, m.role)] = gram_b(m);
        for (const auto& m : d.modules) gd_[idx(m.layer, m.role)] = gram_b(m);
    }
    void after_matmul(const model::Weight& w, const float* x, int64_t n, float*) override {
        const int ri = role_index(w.role);
        if (ri < 0 || w.layer < 0 || w.layer >= s_.n_layer) return;
        const LoraModule* mt = t_.find(w.layer, w.role);
        const LoraModule* md = d_.find(w.layer, w.role);
        if (!mt || !md) return;
        const size_t k = idx(w.layer, w.role);
        for (int64_t r = 0; r < n; ++r) {
            const float* h = x + r * w.n_cols;
            double nh = 0;
            for (int64_t i = 0; i < w.n_cols; ++i) nh += double(h[i]) * h[i];
            nh = std::sqrt(nh);
            if (nh == 0) continue;
            const double et = response_norm(*mt, gt_[k], h), ed = response_norm(*md, gd_[k], h);
            s_.rho_t[k] += et / nh;
            s_.rho_d[k] += ed / nh;
            s_.e_t[k] += et;
            s_.e_d[k] += ed;
            s_.n[k] += 1;
        }
    }
    ProbeSums take() { return std::move(s_); }

private:
    size_t idx(int layer, WeightRole r) const { return size_t(layer * kNumRoles + role_index(r)); }
    const LoraAdapter &t_, &d_;
    ProbeSums s_;
    std::vector<std::vector<double>> gt_, gd_;
};

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

Result<ProbeSums> run_probe(model::Context& ctx, const LoraAdapter& t, const LoraAdapter& d,
                            const std::vector<std::vector<int32_t>>& prompts) {
    if (prompts.empty()) return invalid_input("--calib: no calibration prompts");
    ProbeHook hook(t, d, ctx.model().hp.n_layer);
    ctx.clear_hooks();
    ctx.add_matmul_hook(&hook);
    for (size_t i = 0; i < prompts.size(); ++i) {
        if (prompts[i].empty()) continue;
        const size_t len = std::min<size_t>(prompts[i].size(), 128);
        ctx.truncate(0);
        auto r = ctx.eval(std::span<const int32_t>(prompts[i].data(), len));
        if (!r) {
            ctx.clear_hooks();
            return r.error().with_context("calibration prompt " + std::to_string(i + 1));
        }
    }
    ctx.clear_hooks();
    ctx.truncate(0);
    return hook.take();
}

Gates calibrate_gates(int64_t L, const std::vector<double>& p_t, const std::vector<double>& p_d,
                      const MergeOptions& o) {
    Gates g;
    g.n_layer = L;
    g.p_t = p_t;
    g.p_d = p_d;
    g.g_t.assign(size_t(L * kNumRoles), 0.5);
    g.g_d.assign(size_t(L * kNumRoles), 0.5);
    const double eps = 1e-12, logit_gmax = std::log(o.g_max / (1 - o.g_max));
    for (int r = 0; r < kNumRoles; ++r) {
        std::vector<double> delta(size_t(L), std::numeric_limits<double>::quiet_NaN());
        std::vector<double> present;
        for (int64_t l = 0; l < L; ++l) {
            const double pt = p_t[size_t(l * kNumRoles + r)], pd = p_d[size_t(l * kNumRoles + r)];
            if (std::isnan(pt) || std::isnan(pd)) continue;
            delta[size_t(l)] = std::log(pd + eps) - std::log(pt + eps);
            present.push_back(delta[size_t(l)]);
        }
        if (present.empty()) continue;
        const double med = o.center ? median(present) : 0.0;
        std::vector<double> dh(size_t(L), std::numeric_limits<double>::quiet_NaN());
        for (int64_t l = 0; l < L; ++l)
            if (!std::isnan(delta[size_t(l)])) dh[size_t(l)] = delta[size_t(l)] - med;
        if (o.smooth_window > 1) {  // centred moving average over the layers that have a value
            std::vector<double> sm = dh;
            const int64_t h = o.smooth_window / 2;
            for (int64_t l = 0; l < L; ++l) {
                if (std::isnan(dh[size_t(l)])) continue;
                double s = 0;
                int c = 0;
                for (int64_t k = std::max<int64_t>(0, l - h); k <= std::min(L - 1, l + h); ++k)
                    if (!std::isnan(dh[size_t(k)])) { s += dh[size_t(k)]; ++c; }
                sm[size_t(l)] = s / c;
            }
            dh = sm;
        }
        double mx = 0;
        for (double v : dh)
            if (!std::isnan(v)) mx = std::max(mx, std::fabs(v));
        for (int64_t l = 0; l < L; ++l) {
            if (std::isnan(dh[size_t(l)])) continue;
            double gd = 0.5;
            if (mx > 0) {
                const double tau = mx / logit_gmax;
                gd = std::clamp(1.0 / (1.0 + std::exp(-dh[size_t(l)] / tau)), 1 - o.g_max, o.g_max);
            }
            g.g_d[size_t(l * kNumRoles + r)] = gd;
            g.g_t[size_t(l * kNumRoles + r)] = 1 - gd;
        }
    }
    return g;
}

Gates probe_gates(const ProbeSums& s, const LoraAdapter& t, const LoraAdapter& d, const MergeOptions& o) {
    const int64_t L = s.n_layer;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> p_t(size_t(L * kNumRoles), nan), p_d(size_t(L * kNumRoles), nan);
    std::vector<double> mean_t(kNumRoles, 0), mean_d(kNumRoles, 0);
    std::vector<int> cnt(kNumRoles, 0);
    for (int64_t l = 0; l < L; ++l)
        for (int r = 0; r < kNumRoles; ++r) {
            const size_t k = size_t(l * kNumRoles + r);
            if (s.n[k] == 0) continue;
            mean_t[size_t(r)] += s.e_t[k] / double(s.n[k]);
            mean_d[size_t(r)] += s.e_d[k] / double(s.n[k]);
            ++cnt[size_t(r)];
        }
    for (int64_t l = 0; l < L; ++l)
        for (int r = 0; r < kNumRoles; ++r) {
            const size_t k = size_t(l * kNumRoles + r);
            const LoraModule* mt = t.find(int(l), kRoles[r]);
            const LoraModule* md = d.find(int(l), kRoles[r]);
            if (s.n[k] == 0 || !mt || !md) continue;
            const double n = double(s.n[k]);
            if (o.probe_global) {
                p_t[k] = (s.e_t[k] / n) / (mean_t[size_t(r)] / cnt[size_t(r)]);
                p_d[k] = (s.e_d[k] / n) / (mean_d[size_t(r)] / cnt[size_t(r)]);
            } else {
                const double ft = frobenius_norm(*mt, gram_b(*mt)), fd = frobenius_norm(*md, gram_b(*md));
                p_t[k] = ft > 0 ? (s.rho_t[k] / n) / ft : 0;
                p_d[k] = fd > 0 ? (s.rho_d[k] / n) / fd : 0;
            }
        }
    return calibrate_gates(L, p_t, p_d, o);
}

Gates ramp_gates(int64_t L, double g_max) {
    Gates g;
    g.n_layer = L;
    g.g_t.assign(size_t(L * kNumRoles), 0.5);
    g.g_d.assign(size_t(L * kNumRoles), 0.5);
    for (int64_t l = 0; l < L; ++l)
        for (int r = 0; r < kNumRoles; ++r) {
            const double gt = L > 1 ? g_max - (2 * g_max - 1) * double(l) / double(L - 1) : 0.5;
            g.g_t[size_t(l * kNumRoles + r)] = gt;
            g.g_d[size_t(l * kNumRoles + r)] = 1 - gt;
        }
    return g;
}

}  // namespace strata::adapters

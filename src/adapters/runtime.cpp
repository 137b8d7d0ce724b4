// LoraHook: t = A x (rank values per token), then y += scale * B t.
#include "adapters/runtime.h"

#include "model/model.h"

namespace strata::adapters {

LoraHook::LoraHook(int64_t n_layer) : n_layer_(n_layer), by_module_(size_t(n_layer * kNumRoles)) {}

void LoraHook::add(std::shared_ptr<const LoraAdapter> ad, float user_scale) {
    for (const auto& m : ad->modules)
        if (m.layer >= 0 && m.layer < n_layer_)
            by_module_[size_t(m.layer * kNumRoles + role_index(m.role))].push_back({&m, user_scale * m.scale});
    adapters_.push_back(std::move(ad));
}

void LoraHook::after_matmul(const model::Weight& w, const float* x, int64_t n, float* y) {
    const int ri = role_index(w.role);
    if (ri < 0 || w.layer < 0 || w.layer >= n_layer_) return;
    for (const Entry& e : by_module_[size_t(w.layer * kNumRoles + ri)]) {
        const LoraModule& m = *e.m;
        tmp_.resize(size_t(m.rank));
        for (int64_t t = 0; t < n; ++t) {
            const float* xr = x + t * m.d_in;
            for (int64_t k = 0; k < m.rank; ++k) {
                const float* a = &m.a[size_t(k * m.d_in)];
                float s = 0;
                for (int64_t i = 0; i < m.d_in; ++i) s += a[i] * xr[i];
                tmp_[size_t(k)] = e.scale * s;
            }
            float* yr = y + t * m.d_out;
            for (int64_t o = 0; o < m.d_out; ++o) {
                const float* b = &m.b[size_t(o * m.rank)];
                float s = 0;
                for (int64_t k = 0; k < m.rank; ++k) s += b[k] * tmp_[size_t(k)];
                yr[o] += s;
            }
        }
    }
}

}  // namespace strata::adapters

// TIES/DARE entry-wise operations (mergekit sparsify.py / generalized_task_arithmetic.py,
// PEFT merge_utils.py), written for determinism: fixed tie-breaking and one RNG draw per
// entry in a fixed order.
#include "adapters/merge/sparsify.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace strata::adapters {

void trim_top_k(std::vector<float>& t, double density) {
    const int64_t n = int64_t(t.size());
    const int64_t k = int64_t(std::floor(density * double(n)));
    if (k >= n) return;
    std::vector<int32_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    auto before = [&](int32_t x, int32_t y) {
        const float ax = std::fabs(t[size_t(x)]), ay = std::fabs(t[size_t(y)]);
        return ax != ay ? ax > ay : x < y;
    };
    if (k > 0) std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), before);
    std::vector<uint8_t> keep(size_t(n), 0);
    for (int64_t i = 0; i < k; ++i) keep[size_t(idx[size_t(i)])] = 1;
    for (int64_t i = 0; i < n; ++i)
        if (!keep[size_t(i)]) t[size_t(i)] = 0.f;
}

std::vector<uint8_t> dare_mask(int64_t n, double density, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> m(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        // 53 random bits -> a double in [0, 1); keep with probability density.
        const double u = double(rng() >> 11) * 0x1.0p-53;
        m[size_t(i)] = u < density ? 1 : 0;
    }
    return m;
}

void dare_drop(std::vector<float>& t, double density, uint64_t seed, bool l1) {
    if (density >= 1) return;
    const std::vector<uint8_t> m = dare_mask(int64_t(t.size()), density, seed);
    double before = 0, after = 0;
    for (size_t i = 0; i < t.size(); ++i) {
        before += std::fabs(double(t[i]));
        if (!m[i]) t[i] = 0.f;
        after += std::fabs(double(t[i]));
    }
    const double ratio = l1 ? before / (after + 1e-7) : 1.0 / density;
    for (float& v : t) v = float(double(v) * ratio);
}

std::vector<float> disjoint_merge(const std::vector<std::vector<float>>& tw, const std::vector<double>& w,
                                  const std::vector<std::vector<float>>* sign_src, Divisor div) {
    const size_t n = tw.empty() ? 0 : tw[0].size();
    std::vector<float> out(n, 0.f);
    for (size_t e = 0; e < n; ++e) {
        double elect = 0;
        for (size_t i = 0; i < tw.size(); ++i) elect += sign_src ? (*sign_src)[i][e] : tw[i][e];
        const int gamma = elect >= 0 ? 1 : -1;
        double sum = 0, den = 0;
        for (size_t i = 0; i < tw.size(); ++i) {
            const float v = tw[i][e];
            const int sg = v > 0 ? 1 : v < 0 ? -1 : 0;
            if (sg != gamma) continue;
            sum += v;
            den += div == Divisor::kCount ? 1.0 : w[i];
        }
        if (div != Divisor::kNone && den != 0) sum /= den;
        out[e] = float(sum);
    }
    return out;
}

}  // namespace strata::adapters

// TIES/DARE entry-wise operations (mergekit sparsify.py / generalized_task_arithmetic.py,
// PEFT merge_utils.py), written for determinism: fixed tie-breaking and one RNG draw per
// entry in a fixed order.
#include "adapters/merge/sparsify.h"

#include <algorithm>
#include <functional>
#include <cmath>
#include <numeric>

namespace strata::adapters {

void trim_top_k(std::vector<float>& t, double density) {
    const int64_t n = int64_t(t.size());
    const int64_t k = int64_t(std::floor(density * double(n)));
    if (k >= n) return;
    if (k <= 0) {
        std::fill(t.begin(), t.end(), 0.f);
        return;
    }
    // The k-th largest magnitude by nth_element on a copy of the magnitudes (fast on floats),
    // then keep everything above it and, among entries equal to it, the lowest indices.
    std::vector<float> mag(t.size());
    for (size_t i = 0; i < t.size(); ++i) mag[i] = std::fabs(t[i]);
    std::nth_element(mag.begin(), mag.begin() + (k - 1), mag.end(), std::greater<float>());
    const float thr = mag[size_t(k - 1)];
    int64_t above = 0;
    for (float v : t) above += std::fabs(v) > thr;
    int64_t ties_left = k - above;
    for (float& v : t) {
        const float a = std::fabs(v);
        if (a > thr) continue;
        if (a == thr && ties_left > 0) {
            --ties_left;
            continue;
        }
        v = 0.f;
    }
}

std::vector<uint8_t> dare_mask(int64_t n, double density, uint64_t seed) {
    // Counter-based splitmix64: entry i's draw depends only on (seed, i), so the mask is
    // bit-identical for a fixed seed and 3x cheaper than mt19937_64 (which was a sixth of a
    // whole-model DARE-TIES merge).
    std::vector<uint8_t> m(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        uint64_t z = seed + 0x9e3779b97f4a7c15ull * uint64_t(i + 1);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        // 53 random bits -> a double in [0, 1); keep with probability density.
        m[size_t(i)] = double(z >> 11) * 0x1.0p-53 < density ? 1 : 0;
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

// Shared helpers for the kv tests (not part of the library).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace strata::kv::test {

// n standard-normal values; with outlier > 0 every channel 9 (mod 64) is scaled by it, the
// per-channel outlier pattern of real keys.
inline std::vector<float> randn(size_t n, uint32_t seed, float outlier = 0) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = nd(rng) * (outlier > 0 && i % 64 == 9 ? outlier : 1.f);
    return v;
}

}  // namespace strata::kv::test

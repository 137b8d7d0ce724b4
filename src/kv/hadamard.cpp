// Fast Walsh–Hadamard transform and the dense matrix it must equal (hadamard.h).
#include "kv/hadamard.h"

#include <cmath>

namespace strata::kv {

void fwht(float* x, int n) {
    for (int len = 1; len < n; len <<= 1)
        for (int i = 0; i < n; i += 2 * len)
            for (int j = i; j < i + len; ++j) {
                const float a = x[j], b = x[j + len];
                x[j] = a + b;
                x[j + len] = a - b;
            }
    const float s = 1.0f / std::sqrt(float(n));  // exactly 0.125 for n = 64
    for (int i = 0; i < n; ++i) x[i] *= s;
}

std::vector<double> hadamard_dense(int n) {
    // H_{2n} = [[H_n, H_n], [H_n, -H_n]]: entry (i, j) = (-1)^popcount(i & j).
    std::vector<double> h(size_t(n) * size_t(n));
    const double s = 1.0 / std::sqrt(double(n));
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) h[size_t(i) * size_t(n) + size_t(j)] = (__builtin_popcount(unsigned(i & j)) & 1) ? -s : s;
    return h;
}

}  // namespace strata::kv

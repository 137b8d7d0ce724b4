// VarN's tile statistics (varn.cpp) as plain loops, included by varn.cpp's dispatch
// (tile_kernels.cpp) and by the AVX2 / AVX-512 kernel files, where the same source
// compiles to wider vectors. Internal linkage: one copy per translation unit and ISA.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace strata::kv {
namespace {

// sd[j] = sd_i(x[i][j]·er[i]), unbiased, two-pass; mean: [C] scratch. Columns in blocks
// of 32 so the running sums stay in registers across the rows (a [C] accumulator in
// memory costs a store-to-load round trip per row).
void col_sd(const double* x, int R, int C, const double* er, double* mean, double* sd) {
    constexpr int kB = 32;
    for (int j0 = 0; j0 < C; j0 += kB) {
        const int nb = std::min(kB, C - j0);
        if (nb == kB) {
            double a[kB] = {}, b[kB] = {};
            for (int i = 0; i < R; ++i) {
                const double* xi = x + size_t(i) * size_t(C) + j0;
                const double e = er[i];
                for (int u = 0; u < kB; ++u) a[u] += xi[u] * e;
            }
            for (int u = 0; u < kB; ++u) a[u] /= R;
            for (int i = 0; i < R; ++i) {
                const double* xi = x + size_t(i) * size_t(C) + j0;
                const double e = er[i];
                for (int u = 0; u < kB; ++u) {
                    const double d = xi[u] * e - a[u];
                    b[u] += d * d;
                }
            }
            for (int u = 0; u < kB; ++u) mean[j0 + u] = a[u], sd[j0 + u] = std::sqrt(b[u] / (R - 1));
            continue;
        }
        for (int j = j0; j < j0 + nb; ++j) {
            double m = 0, ss = 0;
            for (int i = 0; i < R; ++i) m += x[size_t(i) * size_t(C) + size_t(j)] * er[i];
            m /= R;
            for (int i = 0; i < R; ++i) {
                const double d = x[size_t(i) * size_t(C) + size_t(j)] * er[i] - m;
                ss += d * d;
            }
            mean[j] = m, sd[j] = std::sqrt(ss / (R - 1));
        }
    }
}

// sd[i] = sd_j(x[i][j]·ec[j]), unbiased, two-pass. Eight partial sums per pass: a single
// running double sum is a latency-bound chain the compiler may not reorder.
void row_sd(const double* x, int R, int C, const double* ec, double* sd) {
    const int C8 = C & ~7;
    for (int i = 0; i < R; ++i) {
        const double* xi = x + size_t(i) * size_t(C);
        double a[8] = {};
        for (int j = 0; j < C8; j += 8)
            for (int u = 0; u < 8; ++u) a[u] += xi[j + u] * ec[j + u];
        double m = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
        for (int j = C8; j < C; ++j) m += xi[j] * ec[j];
        m /= C;
        double b[8] = {};
        for (int j = 0; j < C8; j += 8)
            for (int u = 0; u < 8; ++u) {
                const double d = xi[j + u] * ec[j + u] - m;
                b[u] += d * d;
            }
        double ss = ((b[0] + b[4]) + (b[1] + b[5])) + ((b[2] + b[6]) + (b[3] + b[7]));
        for (int j = C8; j < C; ++j) ss += (xi[j] * ec[j] - m) * (xi[j] * ec[j] - m);
        sd[i] = std::sqrt(ss / (C - 1));
    }
}

}  // namespace
}  // namespace strata::kv

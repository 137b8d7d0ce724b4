// VarN, RTN and code packing (varn.h). Constants are the reference implementation's
// (spec §2.4, §2.9): std clamp [1e-3, 1e3] before the log, log-scale clamp [-0.3, 10],
// imbalance floor 1e-8, RTN step floor 1e-10, unbiased (n-1) two-pass std, ties of the
// imbalance going to the later iterate.
#include "kv/varn.h"

#include <algorithm>
#include <cmath>

namespace strata::kv {

namespace {

// Unbiased two-pass standard deviation of n values at x[0], x[stride], ...
template <class F>
double sd(int n, F&& at) {
    double m = 0;
    for (int k = 0; k < n; ++k) m += at(k);
    m /= n;
    double ss = 0;
    for (int k = 0; k < n; ++k) ss += (at(k) - m) * (at(k) - m);
    return std::sqrt(ss / (n - 1));
}

// Imbalance of Y[i][j] = x[i][j] * ec[j] * er[i].
double imb_scaled(const float* x, int R, int C, const std::vector<double>& ec, const std::vector<double>& er) {
    auto y = [&](int i, int j) { return double(x[size_t(i) * size_t(C) + size_t(j)]) * ec[size_t(j)] * er[size_t(i)]; };
    double cmax = 0, cmin = INFINITY, rmax = 0, rmin = INFINITY;
    for (int j = 0; j < C; ++j) {
        const double s = sd(R, [&](int i) { return y(i, j); });
        cmax = std::max(cmax, s), cmin = std::min(cmin, s);
    }
    for (int i = 0; i < R; ++i) {
        const double s = sd(C, [&](int j) { return y(i, j); });
        rmax = std::max(rmax, s), rmin = std::min(rmin, s);
    }
    return cmax / std::max(cmin, 1e-8) + rmax / std::max(rmin, 1e-8);
}

}  // namespace

double imbalance(const float* x, int rows, int cols) {
    return imb_scaled(x, rows, cols, std::vector<double>(size_t(cols), 1.0), std::vector<double>(size_t(rows), 1.0));
}

VarnResult varn(const float* x, int R, int C, int iterations) {
    std::vector<double> lc(size_t(C), 0.0), lr(size_t(R), 0.0), ec(static_cast<size_t>(C)), er(static_cast<size_t>(R));
    VarnResult r;
    r.sc.assign(size_t(C), 1.f);
    r.sr.assign(size_t(R), 1.f);
    auto refresh = [&] {
        for (int j = 0; j < C; ++j) ec[size_t(j)] = std::exp(-lc[size_t(j)]);
        for (int i = 0; i < R; ++i) er[size_t(i)] = std::exp(-lr[size_t(i)]);
    };
    auto y = [&](int i, int j) { return double(x[size_t(i) * size_t(C) + size_t(j)]) * ec[size_t(j)] * er[size_t(i)]; };
    refresh();
    double best = imb_scaled(x, R, C, ec, er);
    r.imbalance_in = best;
    for (int it = 0; it < iterations; ++it) {
        refresh();
        for (int j = 0; j < C; ++j) {
            const double s = sd(R, [&](int i) { return y(i, j); });
            lc[size_t(j)] = std::clamp(lc[size_t(j)] + std::log(std::clamp(s, 1e-3, 1e3)), -0.3, 10.0);
        }
        refresh();
        for (int i = 0; i < R; ++i) {
            const double s = sd(C, [&](int j) { return y(i, j); });
            lr[size_t(i)] = std::clamp(lr[size_t(i)] + std::log(std::clamp(s, 1e-3, 1e3)), -0.3, 10.0);
        }
        refresh();
        const double v = imb_scaled(x, R, C, ec, er);
        if (v <= best) {
            best = v;
            for (int j = 0; j < C; ++j) r.sc[size_t(j)] = float(std::exp(lc[size_t(j)]));
            for (int i = 0; i < R; ++i) r.sr[size_t(i)] = float(std::exp(lr[size_t(i)]));
        }
    }
    r.imbalance = best;
    return r;
}

RtnRow rtn_row(const float* x, int n, int bits, uint8_t* codes) {
    const int qmax = (1 << bits) - 1;
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; ++j) lo = std::min(lo, x[j]), hi = std::max(hi, x[j]);
    const float d = std::max((hi - lo) / float(qmax), 1e-10f);
    for (int j = 0; j < n; ++j) {
        // nearbyint rounds half to even in the default rounding mode (torch.round / RINT).
        const float c = std::nearbyint((x[j] - lo) / d);
        codes[j] = uint8_t(std::clamp(c, 0.f, float(qmax)));
    }
    return {lo, d};
}

size_t packed_bytes(int n, int bits) { return size_t(n) * size_t(bits) / 8; }

void pack_codes(const uint8_t* c, int n, int bits, uint8_t* dst) {
    std::fill(dst, dst + packed_bytes(n, bits), uint8_t(0));
    if (bits == 3) {
        uint8_t* hi = dst + n / 4;
        for (int i = 0; i < n; ++i) {
            dst[i / 4] |= uint8_t((c[i] & 3) << ((i % 4) * 2));
            hi[i / 8] |= uint8_t((c[i] >> 2) << (i % 8));
        }
        return;
    }
    const int p = 8 / bits;
    for (int i = 0; i < n; ++i) dst[i / p] |= uint8_t(c[i] << ((i % p) * bits));
}

void unpack_codes(const uint8_t* src, int n, int bits, uint8_t* c) {
    if (bits == 3) {
        const uint8_t* hi = src + n / 4;
        for (int i = 0; i < n; ++i) c[i] = uint8_t(((src[i / 4] >> ((i % 4) * 2)) & 3) | (((hi[i / 8] >> (i % 8)) & 1) << 2));
        return;
    }
    if (bits == 4) {
        for (int i = 0; i < n / 2; ++i) c[2 * i] = src[i] & 15, c[2 * i + 1] = src[i] >> 4;
        return;
    }
    if (bits == 2) {
        for (int i = 0; i < n / 4; ++i) {
            const uint8_t b = src[i];
            c[4 * i] = b & 3, c[4 * i + 1] = (b >> 2) & 3, c[4 * i + 2] = (b >> 4) & 3, c[4 * i + 3] = b >> 6;
        }
        return;
    }
    const int p = 8 / bits, m = (1 << bits) - 1;
    for (int i = 0; i < n; ++i) c[i] = uint8_t((src[i / p] >> ((i % p) * bits)) & m);
}

}  // namespace strata::kv

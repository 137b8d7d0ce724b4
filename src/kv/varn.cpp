// VarN, RTN and code packing (varn.h). Constants are the reference implementation's
// (spec §2.4, §2.9): std clamp [1e-3, 1e3] before the log, log-scale clamp [-0.3, 10],
// imbalance floor 1e-8, RTN step floor 1e-10, unbiased (n-1) two-pass std, ties of the
// imbalance going to the later iterate.
#include "kv/varn.h"

#include <algorithm>
#include <cmath>

#include "kv/tile_kernels.h"

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

// Standard deviations of the tile under the current scales, computed the cheap way
// (spec §7.2 "Flush"): Y[i][j] = x[i][j]·ec[j]·er[i], so column j's std is
// ec[j]·sd_i(x[i][j]·er[i]) and row i's is er[i]·sd_j(x[i][j]·ec[j]). Row statistics of
// x·ec serve both the row update and the imbalance after it (ec does not change in
// between); column statistics of x·er serve the imbalance and the next iteration's column
// update. So one iteration is two two-pass sweeps over the tile instead of eight, with
// contiguous inner loops the compiler vectorizes, and exp/log only of the scales that moved.
namespace {

double imb_of(const std::vector<double>& sdc, const std::vector<double>& sdr) {
    const auto [cmin, cmax] = std::minmax_element(sdc.begin(), sdc.end());
    const auto [rmin, rmax] = std::minmax_element(sdr.begin(), sdr.end());
    return *cmax / std::max(*cmin, 1e-8) + *rmax / std::max(*rmin, 1e-8);
}

}  // namespace

VarnResult varn(const float* x, int R, int C, int iterations) {
    const TileKernels& kern = tile_kernels(cpu::active_isa());
    const std::vector<double> xd(x, x + size_t(R) * size_t(C));
    std::vector<double> lc(size_t(C), 0.0), lr(size_t(R), 0.0), ec(size_t(C), 1.0), er(size_t(R), 1.0);
    std::vector<double> best_lc = lc, best_lr = lr, tmp(static_cast<size_t>(C));
    std::vector<double> sdc(static_cast<size_t>(C)), sdz(static_cast<size_t>(R)), sdr(static_cast<size_t>(R));
    auto log_step = [](double l, double s) { return std::clamp(l + std::log(std::clamp(s, 1e-3, 1e3)), -0.3, 10.0); };
    // Column stds of Y under (lc, lr); kept for the next column update.
    auto col_sd_y = [&] {
        kern.col_sd(xd.data(), R, C, er.data(), tmp.data(), sdc.data());
        for (int j = 0; j < C; ++j) sdc[size_t(j)] *= ec[size_t(j)];
    };
    VarnResult r;
    col_sd_y();
    kern.row_sd(xd.data(), R, C, ec.data(), sdz.data());
    sdr = sdz;
    double best = imb_of(sdc, sdr);
    r.imbalance_in = best;
    for (int it = 0; it < iterations; ++it) {
        for (int j = 0; j < C; ++j) {
            lc[size_t(j)] = log_step(lc[size_t(j)], sdc[size_t(j)]);
            ec[size_t(j)] = std::exp(-lc[size_t(j)]);
        }
        kern.row_sd(xd.data(), R, C, ec.data(), sdz.data());
        for (int i = 0; i < R; ++i) {
            lr[size_t(i)] = log_step(lr[size_t(i)], er[size_t(i)] * sdz[size_t(i)]);
            er[size_t(i)] = std::exp(-lr[size_t(i)]);
            sdr[size_t(i)] = er[size_t(i)] * sdz[size_t(i)];
        }
        col_sd_y();
        const double v = imb_of(sdc, sdr);
        if (v <= best) best = v, best_lc = lc, best_lr = lr;
    }
    r.sc.resize(size_t(C)), r.sr.resize(size_t(R));
    for (int j = 0; j < C; ++j) r.sc[size_t(j)] = float(std::exp(best_lc[size_t(j)]));
    for (int i = 0; i < R; ++i) r.sr[size_t(i)] = float(std::exp(best_lr[size_t(i)]));
    r.imbalance = best;
    return r;
}

RtnRow rtn_row(const float* x, int n, int bits, uint8_t* codes) {
    const int qmax = (1 << bits) - 1;
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; ++j) lo = std::min(lo, x[j]), hi = std::max(hi, x[j]);
    const float d = std::max((hi - lo) / float(qmax), 1e-10f);
    for (int j = 0; j < n; ++j) {
        // Half to even (torch.round / RINT): adding and removing 1.5·2^23 rounds a value
        // in [0, 2^22) to an integer in the default rounding mode, as nearbyint does,
        // without a libm call per element.
        const float c = ((x[j] - lo) / d + 0x1.8p23f) - 0x1.8p23f;
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

bool tile_stripe_order(int n) { return n % 64 == 0; }

void pack_tile_codes(const uint8_t* c, int n, int bits, uint8_t* dst) {
    if (!tile_stripe_order(n)) return pack_codes(c, n, bits, dst);
    std::fill(dst, dst + packed_bytes(n, bits), uint8_t(0));
    if (bits == 4) {
        for (int i = 0; i < n; ++i) dst[(i / 32) * 16 + i % 16] |= uint8_t(c[i] << ((i % 32) / 16 * 4));
        return;
    }
    for (int i = 0; i < n; ++i) dst[(i / 64) * 16 + i % 16] |= uint8_t((c[i] & 3) << ((i % 64) / 16 * 2));
    if (bits == 3) {
        uint8_t* hi = dst + n / 4;
        for (int i = 0; i < n; ++i) {
            const int j = i % 16, k = (i % 64) / 16;
            hi[(i / 64) * 8 + j % 8] |= uint8_t((c[i] >> 2) << (4 * (j / 8) + k));
        }
    }
}

void unpack_tile_codes(const uint8_t* src, int n, int bits, uint8_t* c) {
    if (!tile_stripe_order(n)) return unpack_codes(src, n, bits, c);
    if (bits == 4) {
        for (int b = 0; b < n / 32; ++b)
            for (int j = 0; j < 16; ++j) c[32 * b + j] = src[16 * b + j] & 15, c[32 * b + 16 + j] = src[16 * b + j] >> 4;
        return;
    }
    for (int b = 0; b < n / 64; ++b)
        for (int j = 0; j < 16; ++j) {
            const uint8_t x = src[16 * b + j];
            c[64 * b + j] = x & 3, c[64 * b + 16 + j] = (x >> 2) & 3, c[64 * b + 32 + j] = (x >> 4) & 3,
                       c[64 * b + 48 + j] = x >> 6;
        }
    if (bits == 3) {
        const uint8_t* hi = src + n / 4;
        for (int i = 0; i < n; ++i) {
            const int j = i % 16, k = (i % 64) / 16;
            c[i] = uint8_t(c[i] | (((hi[(i / 64) * 8 + j % 8] >> (4 * (j / 8) + k)) & 1) << 2));
        }
    }
}

}  // namespace strata::kv

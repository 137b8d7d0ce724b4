// Low-rank linear algebra for merging (Eigen): the compact SVD of a factored update B·A
// through two thin QRs (shared/specs/tada.md §2.5 step 1 and §2.6), re-factoring to rank r
// with the singular values split as sqrt(S) into both factors (mergekit's extract_lora
// convention), and truncating a dense update to rank r (§3.8). Factored work is float64.
// Dense truncation uses a seeded randomized range finder with power iterations (float32
// products, float64 small SVD) by default: a full BDCSVD of a 1536x576 matrix per module
// would take minutes for a whole model; `exact` switches to BDCSVD in float64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace strata::adapters {

// Row-major [rows][cols] double matrix; kept simple so merge methods need no Eigen headers.
struct Mat {
    int64_t rows = 0, cols = 0;
    std::vector<double> v;
    Mat() = default;
    Mat(int64_t r, int64_t c) : rows(r), cols(c), v(size_t(r * c), 0.0) {}
    double& at(int64_t r, int64_t c) { return v[size_t(r * cols + c)]; }
    double at(int64_t r, int64_t c) const { return v[size_t(r * cols + c)]; }
};

// Compact SVD: M = U diag(s) V^T with U [d_out][k], V [d_in][k], s descending; components
// with s <= rel_tol * s[0] are dropped.
struct Svd {
    Mat u, v;
    std::vector<double> s;
};

// SVD of B·A (B [d_out][k], A [k][d_in]) via QR of B and A^T and an SVD of the k x k core.
Svd lowrank_svd(const Mat& b, const Mat& a, double rel_tol = 1e-12);

// Result of re-factoring: A [rank][d_in], B [d_out][rank] (float32, ready for a LoraModule),
// plus the kept fraction of squared singular values.
struct Factors {
    int64_t rank = 0;
    std::vector<float> a, b;
    double kept_energy = 1.0;
};

// Keeps the top r_out components of an SVD: A = sqrt(S) V^T, B = U sqrt(S), zero-padded to
// r_out when fewer components exist (padding rows/cols contribute nothing).
Factors factors_from_svd(const Svd& svd, int64_t d_out, int64_t d_in, int64_t r_out);

// Best rank-r_out factors of B·A (exact, QR route).
Factors refactor(const Mat& b, const Mat& a, int64_t r_out);

// Rank-r_out factors of a dense row-major [d_out][d_in] float matrix. Randomized (seeded,
// deterministic) unless exact.
Factors compress_dense(const std::vector<float>& m, int64_t d_out, int64_t d_in, int64_t r_out, bool exact,
                       uint64_t seed);

// scale * B A for row-major B [d_out][k] and A [k][d_in] (float32 GEMM).
std::vector<float> dense_product(const std::vector<float>& b, const std::vector<float>& a, int64_t d_out, int64_t k,
                                 int64_t d_in, float scale);

}  // namespace strata::adapters

// Eigen-backed implementations of linalg.h. Eigen stays inside this file so the rest of
// the library compiles fast and sees plain vectors.
#include "adapters/linalg.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <random>

namespace strata::adapters {

namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::Map<const MatD> view(const Mat& m) { return Eigen::Map<const MatD>(m.v.data(), m.rows, m.cols); }

// Thin Q of a tall matrix (Householder; columns beyond the rank still orthonormal).
Eigen::MatrixXd thin_q(const Eigen::MatrixXd& x) {
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(x);
    return qr.householderQ() * Eigen::MatrixXd::Identity(x.rows(), x.cols());
}

Svd from_eigen(const Eigen::MatrixXd& u, const Eigen::VectorXd& s, const Eigen::MatrixXd& v, double rel_tol) {
    Svd out;
    int64_t k = 0;
    const double s0 = s.size() ? s(0) : 0.0;
    while (k < s.size() && s(k) > rel_tol * s0 && s(k) > 0) ++k;
    out.u = Mat(u.rows(), k);
    out.v = Mat(v.rows(), k);
    out.s.assign(s.data(), s.data() + k);
    for (int64_t i = 0; i < u.rows(); ++i)
        for (int64_t j = 0; j < k; ++j) out.u.at(i, j) = u(i, j);
    for (int64_t i = 0; i < v.rows(); ++i)
        for (int64_t j = 0; j < k; ++j) out.v.at(i, j) = v(i, j);
    return out;
}

}  // namespace

Svd lowrank_svd(const Mat& b, const Mat& a, double rel_tol) {
    const Eigen::MatrixXd B = view(b), At = view(a).transpose();
    if (b.cols > b.rows || b.cols > a.cols) {
        // More components than rows or columns (tiny matrices): the thin QRs would not be
        // square-upper; the dense product is small, so decompose it directly.
        Eigen::JacobiSVD<Eigen::MatrixXd> svd(B * At.transpose(), Eigen::ComputeThinU | Eigen::ComputeThinV);
        return from_eigen(svd.matrixU(), svd.singularValues(), svd.matrixV(), rel_tol);
    }
    Eigen::HouseholderQR<Eigen::MatrixXd> qb(B), qa(At);
    const int64_t k = b.cols;
    const Eigen::MatrixXd Qb = qb.householderQ() * Eigen::MatrixXd::Identity(B.rows(), k);
    const Eigen::MatrixXd Qa = qa.householderQ() * Eigen::MatrixXd::Identity(At.rows(), k);
    const Eigen::MatrixXd Rb = qb.matrixQR().topRows(k).triangularView<Eigen::Upper>();
    const Eigen::MatrixXd Ra = qa.matrixQR().topRows(k).triangularView<Eigen::Upper>();
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(Rb * Ra.transpose(), Eigen::ComputeFullU | Eigen::ComputeFullV);
    return from_eigen(Qb * svd.matrixU(), svd.singularValues(), Qa * svd.matrixV(), rel_tol);
}

Factors factors_from_svd(const Svd& svd, int64_t d_out, int64_t d_in, int64_t r_out) {
    Factors f;
    f.rank = r_out;
    f.a.assign(size_t(r_out * d_in), 0.f);
    f.b.assign(size_t(d_out * r_out), 0.f);
    const int64_t k = std::min<int64_t>(r_out, int64_t(svd.s.size()));
    double total = 0, kept = 0;
    for (size_t i = 0; i < svd.s.size(); ++i) total += svd.s[i] * svd.s[i];
    for (int64_t j = 0; j < k; ++j) {
        kept += svd.s[size_t(j)] * svd.s[size_t(j)];
        const double r = std::sqrt(svd.s[size_t(j)]);
        for (int64_t i = 0; i < d_in; ++i) f.a[size_t(j * d_in + i)] = float(r * svd.v.at(i, j));
        for (int64_t o = 0; o < d_out; ++o) f.b[size_t(o * r_out + j)] = float(svd.u.at(o, j) * r);
    }
    f.kept_energy = total > 0 ? kept / total : 1.0;
    return f;
}

Factors refactor(const Mat& b, const Mat& a, int64_t r_out) {
    if (b.cols == 0) return factors_from_svd(Svd{}, b.rows, a.cols, r_out);
    return factors_from_svd(lowrank_svd(b, a), b.rows, a.cols, r_out);
}

Factors compress_dense(const std::vector<float>& m, int64_t d_out, int64_t d_in, int64_t r_out, bool exact,
                       uint64_t seed) {
    if (exact) {
        const MatD M = Eigen::Map<const MatF>(m.data(), d_out, d_in).cast<double>();
        Eigen::BDCSVD<Eigen::MatrixXd> svd(M, Eigen::ComputeThinU | Eigen::ComputeThinV);
        return factors_from_svd(from_eigen(svd.matrixU(), svd.singularValues(), svd.matrixV(), 1e-12), d_out, d_in,
                                r_out);
    }
    // Randomized range finder (Halko, Martinsson & Tropp 2011, alg. 4.4): Y = M Omega with
    // r_out + 8 columns and two power iterations, re-orthonormalized each time so the small
    // singular values are not lost to rounding.
    const Eigen::Map<const MatF> M(m.data(), d_out, d_in);
    const int64_t k = std::min<int64_t>(r_out + 8, std::min(d_out, d_in));
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    Eigen::MatrixXf omega(d_in, k);
    for (int64_t j = 0; j < k; ++j)
        for (int64_t i = 0; i < d_in; ++i) omega(i, j) = nd(rng);
    Eigen::MatrixXf q = thin_q((M * omega).cast<double>()).cast<float>();
    for (int it = 0; it < 2; ++it) {
        const Eigen::MatrixXf z = thin_q((M.transpose() * q).cast<double>()).cast<float>();
        q = thin_q((M * z).cast<double>()).cast<float>();
    }
    const Eigen::MatrixXd small = (q.transpose() * M).cast<double>();  // [k][d_in]
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(small, Eigen::ComputeThinU | Eigen::ComputeThinV);
    Svd s = from_eigen(q.cast<double>() * svd.matrixU(), svd.singularValues(), svd.matrixV(), 1e-12);
    Factors f = factors_from_svd(s, d_out, d_in, r_out);
    // Kept energy against the true total (the range finder only sees its k components).
    double total = 0, kept = 0;
    for (float x : m) total += double(x) * double(x);
    for (int64_t j = 0; j < std::min<int64_t>(r_out, int64_t(s.s.size())); ++j) kept += s.s[size_t(j)] * s.s[size_t(j)];
    f.kept_energy = total > 0 ? std::min(1.0, kept / total) : 1.0;
    return f;
}

std::vector<float> dense_product(const std::vector<float>& b, const std::vector<float>& a, int64_t d_out, int64_t k,
                                 int64_t d_in, float scale) {
    std::vector<float> out(static_cast<size_t>(d_out * d_in));
    Eigen::Map<MatF> o(out.data(), d_out, d_in);
    o.noalias() = scale * (Eigen::Map<const MatF>(b.data(), d_out, k) * Eigen::Map<const MatF>(a.data(), k, d_in));
    return out;
}

}  // namespace strata::adapters

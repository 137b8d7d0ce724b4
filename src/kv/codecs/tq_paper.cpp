// TurboQuant paper variants tq_mse3 / tq_prod3 (tq_paper.h): the codec, and a per-token
// LayerCache for it (pages of 64 tokens: K rows [64][n_head_kv] then V rows, same codec for
// both). The cache is its own rather than row_cache.h's because the prod variant needs a
// 2D-float prepared query and value accumulator. Kernels are plain C++ loops the compiler
// vectorizes (quality baseline; the D×D query/output maps cost 2·D² per query head and step).
#include "kv/codecs/tq_paper.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <numbers>
#include <utility>

#include "kv/codecs/codecs.h"
#include "kv/lane_dot.h"
#include "kv/page_pool.h"
#include "kv/tile_kernels.h"
#include "kv/varn.h"
#include "tensor/dtype.h"

namespace strata::kv {

struct TqPaperTables {
    std::shared_ptr<const std::vector<float>> cb;   // 2^cb_bits centroids, ascending
    std::shared_ptr<const std::vector<float>> rot;  // Π, row-major D×D
    std::vector<float> mid;                         // centroid midpoints
    std::vector<float> qjl;                         // S, row-major D×D (prod only)
};

namespace {

// Portable normal draws (splitmix64 + Box–Muller), so Π and S do not depend on the
// standard library's distribution implementation.
class Normal {
public:
    explicit Normal(uint64_t seed) : s_(seed) {}
    double operator()() {
        if (have_) return have_ = false, spare_;
        const double u1 = (double(next() >> 11) + 0.5) * 0x1p-53, u2 = double(next() >> 11) * 0x1p-53;
        const double r = std::sqrt(-2.0 * std::log(u1)), th = 2.0 * std::numbers::pi * u2;
        spare_ = r * std::sin(th), have_ = true;
        return r * std::cos(th);
    }

private:
    uint64_t next() {
        uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint64_t s_;
    double spare_ = 0;
    bool have_ = false;
};

// Q of the QR decomposition of an i.i.d. N(0,1) D×D matrix (modified Gram–Schmidt on the
// columns in double; R's diagonal comes out positive, so Q is Haar-distributed).
// Returned row-major; used as Π (y = Π u).
std::vector<float> random_rotation(int D, uint64_t seed) {
    Normal nd(seed);
    std::vector<double> a(size_t(D) * size_t(D));  // column-major: column k at a[k*D]
    for (auto& x : a) x = nd();
    for (int k = 0; k < D; ++k) {
        double* ck = &a[size_t(k) * size_t(D)];
        for (int p = 0; p < k; ++p) {
            const double* cp = &a[size_t(p) * size_t(D)];
            double d = 0;
            for (int i = 0; i < D; ++i) d += cp[i] * ck[i];
            for (int i = 0; i < D; ++i) ck[i] -= d * cp[i];
        }
        double nn = 0;
        for (int i = 0; i < D; ++i) nn += ck[i] * ck[i];
        nn = std::sqrt(nn);
        for (int i = 0; i < D; ++i) ck[i] /= nn;
    }
    std::vector<float> q(a.size());
    for (int i = 0; i < D; ++i)
        for (int k = 0; k < D; ++k) q[size_t(i) * size_t(D) + size_t(k)] = float(a[size_t(k) * size_t(D) + size_t(i)]);
    return q;
}

template <class K, class V, class F>
std::shared_ptr<const V> cached(const K& key, F&& make) {
    static std::mutex mu;
    static std::map<K, std::shared_ptr<const V>> m;
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = m[key];
    if (!slot) slot = std::make_shared<const V>(make());
    return slot;
}

// y[i] = sum_j M[i][j] x[j]
inline void matvec(const float* M, const float* x, int D, float* y) {
    for (int i = 0; i < D; ++i) y[i] = dot8(M + size_t(i) * size_t(D), x, D);
}
// y[j] += sum_i M[i][j] a[i]
inline void matvec_t_add(const float* M, const float* a, int D, float* y) {
    for (int i = 0; i < D; ++i) {
        const float* r = M + size_t(i) * size_t(D);
        const float ai = a[i];
        for (int j = 0; j < D; ++j) y[j] += ai * r[j];
    }
}

// Mass of the (unnormalized) coordinate density (1 - y^2)^a on [lo, hi], Simpson's rule.
double mass(double lo, double hi, double a) {
    const int n = 2048;
    const double h = (hi - lo) / n;
    auto f = [&](double y) { return std::pow(std::max(0.0, 1.0 - y * y), a); };
    double s = f(lo) + f(hi);
    for (int i = 1; i < n; ++i) s += (i % 2 ? 4.0 : 2.0) * f(lo + i * h);
    return s * h / 3;
}
// Closed form: the integral of y (1 - y^2)^a over [lo, hi].
double first_moment(double lo, double hi, double a) {
    auto F = [&](double y) { return -std::pow(std::max(0.0, 1.0 - y * y), a + 1) / (2 * (a + 1)); };
    return F(hi) - F(lo);
}

double kQjlScale(int D) { return std::sqrt(std::numbers::pi / 2) / D; }

}  // namespace

std::vector<float> tq_paper_codebook(int D, int bits) {
    static const double gauss[5][8] = {{}, {0.7979}, {0.4528, 1.5104}, {0.2451, 0.7560, 1.3440, 2.1520},
                                       {0.1284, 0.3881, 0.6568, 0.9424, 1.2562, 1.6181, 2.0690, 2.7326}};
    const int half = 1 << (bits - 1);
    const double a = 0.5 * (D - 3);
    std::vector<double> c(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i) c[size_t(i)] = std::min(gauss[bits][i] / std::sqrt(double(D)), 0.99);
    for (int it = 0; it < 2000; ++it) {
        double moved = 0;
        double lo = 0;
        std::vector<double> nc(c.size());
        for (int i = 0; i < half; ++i) {
            const double hi = i + 1 < half ? 0.5 * (c[size_t(i)] + c[size_t(i + 1)]) : 1.0;
            nc[size_t(i)] = first_moment(lo, hi, a) / mass(lo, hi, a);
            moved = std::max(moved, std::fabs(nc[size_t(i)] - c[size_t(i)]));
            lo = hi;
        }
        c = nc;
        if (moved < 1e-13) break;
    }
    std::vector<float> cb(size_t(2 * half));
    for (int i = 0; i < half; ++i) cb[size_t(half + i)] = float(c[size_t(i)]), cb[size_t(half - 1 - i)] = -float(c[size_t(i)]);
    return cb;
}

TqPaperCodec::TqPaperCodec(int D, int bits, bool prod, uint64_t rotation_seed, uint64_t qjl_seed)
    : D_(D), bits_(bits), cb_bits_(prod ? bits - 1 : bits), prod_(prod) {
    codes_bytes_ = packed_bytes(D, cb_bits_);
    row_bytes_ = codes_bytes_ + (prod ? size_t(D / 8) + 4 : 2);
    auto t = std::make_shared<TqPaperTables>();
    t->cb = cached<std::pair<int, int>, std::vector<float>>(std::pair{D, cb_bits_},
                                                            [&] { return tq_paper_codebook(D, cb_bits_); });
    t->rot = cached<std::pair<int, uint64_t>, std::vector<float>>(std::pair{D, rotation_seed},
                                                                  [&] { return random_rotation(D, rotation_seed); });
    for (size_t k = 1; k < t->cb->size(); ++k) t->mid.push_back(0.5f * ((*t->cb)[k - 1] + (*t->cb)[k]));
    if (prod) {
        Normal nd(qjl_seed);
        t->qjl.resize(size_t(D) * size_t(D));
        for (auto& x : t->qjl) x = float(nd());
    }
    t_ = std::move(t);
}

const std::vector<float>& TqPaperCodec::codebook() const { return *t_->cb; }

void TqPaperCodec::encode(const float* x, uint8_t* row) const {
    const int D = D_;
    double n2 = 0;
    for (int j = 0; j < D; ++j) n2 += double(x[j]) * x[j];
    const double n = std::sqrt(n2);
    std::vector<float> u(static_cast<size_t>(D)), y(static_cast<size_t>(D));
    for (int j = 0; j < D; ++j) u[size_t(j)] = n > 0 ? float(x[j] / n) : 0.f;
    matvec(t_->rot->data(), u.data(), D, y.data());
    uint8_t idx[256];
    for (int i = 0; i < D; ++i) {
        int k = 0;
        while (k < int(t_->mid.size()) && y[size_t(i)] > t_->mid[size_t(k)]) ++k;
        idx[i] = uint8_t(k);
    }
    std::memset(row, 0, row_bytes_);
    pack_codes(idx, D, cb_bits_, row);
    auto* h = reinterpret_cast<uint16_t*>(row + codes_bytes_ + (prod_ ? size_t(D / 8) : 0));
    h[0] = fp32_to_fp16(float(n));
    if (!prod_) return;
    // Residual of the (b−1)-bit MSE stage in the model frame, its norm and QJL signs.
    for (int i = 0; i < D; ++i) y[size_t(i)] = (*t_->cb)[idx[i]];
    std::vector<float> r(static_cast<size_t>(D), 0.f), sr(static_cast<size_t>(D));
    matvec_t_add(t_->rot->data(), y.data(), D, r.data());
    double g2 = 0;
    for (int j = 0; j < D; ++j) r[size_t(j)] = u[size_t(j)] - r[size_t(j)], g2 += double(r[size_t(j)]) * r[size_t(j)];
    matvec(t_->qjl.data(), r.data(), D, sr.data());
    uint8_t* signs = row + codes_bytes_;
    for (int i = 0; i < D; ++i)
        if (sr[size_t(i)] >= 0.f) signs[i / 8] |= uint8_t(1u << (i % 8));
    h[1] = fp32_to_fp16(float(std::sqrt(g2)));
}

void TqPaperCodec::unpack(const uint8_t* row, float* y, float* z, float& n, float& gamma) const {
    // Codes (varn.h's pack_codes layout: 2-bit LSB-first, 3-bit a 2-bit plane then a
    // 1-bit plane) straight to centroid values, 8 coordinates per step.
    const float* cb = t_->cb->data();
    if (cb_bits_ == 3) {
        const uint8_t* hi = row + D_ / 4;
        for (int k = 0; k < D_ / 8; ++k) {
            const unsigned lo = unsigned(row[2 * k]) | unsigned(row[2 * k + 1]) << 8, hb = hi[k];
            for (int l = 0; l < 8; ++l) y[8 * k + l] = cb[((lo >> (2 * l)) & 3) | (((hb >> l) & 1) << 2)];
        }
    } else if (cb_bits_ == 2) {
        for (int k = 0; k < D_ / 4; ++k)
            for (int l = 0; l < 4; ++l) y[4 * k + l] = cb[(row[k] >> (2 * l)) & 3];
    } else {
        uint8_t idx[256];
        unpack_codes(row, D_, cb_bits_, idx);
        for (int i = 0; i < D_; ++i) y[i] = cb[idx[i]];
    }
    const auto* h = reinterpret_cast<const uint16_t*>(row + codes_bytes_ + (prod_ ? size_t(D_ / 8) : 0));
    n = fp16_to_fp32(h[0]);
    if (!prod_) return;
    gamma = fp16_to_fp32(h[1]);
    const uint8_t* signs = row + codes_bytes_;
    for (int i = 0; i < D_; ++i) z[i] = float(int((signs[i >> 3] >> (i & 7)) & 1) * 2 - 1);
}

void TqPaperCodec::decode(const uint8_t* row, float* x) const {
    const int D = D_;
    std::vector<float> y(static_cast<size_t>(D)), z(static_cast<size_t>(D));
    float n = 0, gamma = 0;
    unpack(row, y.data(), z.data(), n, gamma);
    std::fill(x, x + D, 0.f);
    matvec_t_add(t_->rot->data(), y.data(), D, x);
    if (prod_) {
        const float k = float(kQjlScale(D)) * gamma;
        for (int i = 0; i < D; ++i) z[size_t(i)] *= k;
        matvec_t_add(t_->qjl.data(), z.data(), D, x);
    }
    for (int j = 0; j < D; ++j) x[j] *= n;
}

void TqPaperCodec::prepare_query(const float* q, float* qp) const {
    matvec(t_->rot->data(), q, D_, qp);
    if (!prod_) return;
    matvec(t_->qjl.data(), q, D_, qp + D_);
    const float k = float(kQjlScale(D_));
    for (int i = 0; i < D_; ++i) qp[D_ + i] *= k;
}

void TqPaperCodec::scores(const uint8_t* row, const float* qp, int g, float* out, size_t ld) const {
    float y[256], z[256], n = 0, gamma = 0;
    unpack(row, y, z, n, gamma);
    const int qf = query_floats();
    for (int j = 0; j < g; ++j) {
        const float* a = qp + size_t(j) * size_t(qf);
        const float s = dot8(a, y, D_), sz = prod_ ? dot8(a + D_, z, D_) : 0.f;
        out[size_t(j) * ld] = n * (s + gamma * sz);
    }
}

void TqPaperCodec::accumulate(const uint8_t* row, const float* w, size_t ld, int g, float* acc) const {
    float y[256], z[256], n = 0, gamma = 0;
    unpack(row, y, z, n, gamma);
    const int qf = query_floats();
    const float kz = prod_ ? float(kQjlScale(D_)) * gamma : 0.f;
    for (int j = 0; j < g; ++j) {
        const float wn = w[size_t(j) * ld] * n;
        if (wn == 0.f) continue;
        float* a = acc + size_t(j) * size_t(qf);
        for (int i = 0; i < D_; ++i) a[i] += wn * y[i];
        if (prod_) {
            const float wz = wn * kz;
            for (int i = 0; i < D_; ++i) a[D_ + i] += wz * z[i];
        }
    }
}

void TqPaperCodec::finish(const float* acc, float* out) const {
    std::fill(out, out + D_, 0.f);
    matvec_t_add(t_->rot->data(), acc, D_, out);
    if (prod_) matvec_t_add(t_->qjl.data(), acc + D_, D_, out);
}

namespace {

constexpr int kPageTokens = 64;

class TqPaperCache final : public LayerCache {
public:
    TqPaperCache(const CacheShape& s, ByteBudget& budget, int bits, bool prod)
        : s_(s), c_(s.head_dim, bits, prod), rb_(c_.row_bytes()),
          pool_(size_t(kPageTokens) * size_t(s.n_head_kv) * 2 * rb_, budget) {}
    ~TqPaperCache() override {
        for (uint32_t id : pages_) pool_.release(id);
    }

    Status append(const float* k, const float* v, int64_t n) override {
        const int hk = s_.n_head_kv, D = s_.head_dim;
        for (int64_t i = 0; i < n; ++i, ++n_) {
            if (n_ % kPageTokens == 0 && size_t(n_ / kPageTokens) == pages_.size()) {
                auto id = pool_.alloc();
                if (!id) return id.error();
                pages_.push_back(*id);
            }
            for (int h = 0; h < hk; ++h) {
                c_.encode(k + (i * hk + h) * D, row(n_, h, 0));
                c_.encode(v + (i * hk + h) * D, row(n_, h, 1));
            }
        }
        return ok_status();
    }

    void attend(const float* q, int64_t n, float* out, const AttendOpts& o) const override {
        const int hk = s_.n_head_kv, D = s_.head_dim, g = s_.n_head / hk, qf = c_.query_floats();
        const TileKernels& kern = tile_kernels(cpu::active_isa());  // max / exp_sum only
        const float scale = score_scale(o, D);
        auto job = [&](int64_t b, int64_t e) {
            std::vector<float> qs(static_cast<size_t>(D)), qp(size_t(g) * size_t(qf)), acc(qp.size()), sc;
            std::vector<double> sum(static_cast<size_t>(g));
            for (int64_t jb = b; jb < e; ++jb) {
                const int64_t i = jb / hk;
                const int h = int(jb % hk);
                const KeySpan span = visible_keys(o, n_, n, i);
                const int64_t n_vis = span.end;
                const size_t ld = size_t(n_vis);
                sc.assign(size_t(g) * ld, 0.f);
                for (int j = 0; j < g; ++j) {
                    const float* qr = q + (i * s_.n_head + h * g + j) * D;
                    for (int d = 0; d < D; ++d) qs[size_t(d)] = qr[d] * scale;
                    c_.prepare_query(qs.data(), &qp[size_t(j * qf)]);
                }
                for (int64_t t = 0; t < n_vis; ++t) c_.scores(row(t, h, 0), qp.data(), g, &sc[size_t(t)], ld);
                for (int j = 0; j < g; ++j) {
                    float* sj = &sc[size_t(j) * ld];
                    std::fill(sj, sj + span.first, -INFINITY);  // before a sliding window
                    sum[size_t(j)] = kern.exp_sum(sj, int(n_vis), kern.max(sj, int(n_vis)));
                }
                std::fill(acc.begin(), acc.end(), 0.f);
                for (int64_t t = 0; t < n_vis; ++t) c_.accumulate(row(t, h, 1), &sc[size_t(t)], ld, g, acc.data());
                for (int j = 0; j < g; ++j) {
                    float* a = &acc[size_t(j * qf)];
                    const float inv = float(1.0 / sum[size_t(j)]);
                    for (int d = 0; d < qf; ++d) a[d] *= inv;
                    c_.finish(a, out + (i * s_.n_head + h * g + j) * D);
                }
            }
        };
        if (o.pool && n * hk > 1) o.pool->parallel_for(n * hk, 1, job);
        else job(0, n * hk);
    }

    void truncate(int64_t n) override {
        n_ = std::clamp<int64_t>(n, 0, n_);
        const size_t keep = size_t((n_ + kPageTokens - 1) / kPageTokens);
        while (pages_.size() > keep) pool_.release(pages_.back()), pages_.pop_back();
    }
    int64_t n_tokens() const override { return n_; }
    size_t bytes() const override { return pool_.bytes_in_use(); }

    void decode(std::vector<float>& k, std::vector<float>& v) const override {
        const int hk = s_.n_head_kv, D = s_.head_dim;
        k.assign(size_t(n_) * size_t(hk * D), 0.f), v.assign(k.size(), 0.f);
        for (int64_t t = 0; t < n_; ++t)
            for (int h = 0; h < hk; ++h) {
                c_.decode(row(t, h, 0), &k[size_t((t * hk + h) * D)]);
                c_.decode(row(t, h, 1), &v[size_t((t * hk + h) * D)]);
            }
    }

private:
    // which: 0 = K, 1 = V.
    const uint8_t* row(int64_t t, int h, int which) const {
        return pool_.page(pages_[size_t(t / kPageTokens)]) +
               ((size_t(which) * kPageTokens + size_t(t % kPageTokens)) * size_t(s_.n_head_kv) + size_t(h)) * rb_;
    }
    uint8_t* row(int64_t t, int h, int which) { return const_cast<uint8_t*>(std::as_const(*this).row(t, h, which)); }

    CacheShape s_;
    TqPaperCodec c_;
    size_t rb_;
    mutable PagePool pool_;
    std::vector<uint32_t> pages_;
    int64_t n_ = 0;
};

class TqPaperMethod final : public Method {
public:
    TqPaperMethod(int bits, bool prod) : bits_(bits), prod_(prod) {}
    std::string_view name() const override { return prod_ ? "tq_prod3" : "tq_mse3"; }
    std::string_view summary() const override {
        return prod_ ? "TurboQuant paper TQ_prod: random rotation, 2-bit Lloyd-Max + 1-bit QJL sketch, K and V"
                     : "TurboQuant paper TQ_mse: random rotation, 3-bit Lloyd-Max codebook, K and V";
    }
    Status check(const CacheShape& s) const override {
        STRATA_TRY(check_gqa(name(), s));
        if (s.head_dim % 8 || s.head_dim > 256)
            return unsupported("kv {}: head_dim {} is not a multiple of 8 up to 256 (code packing)", name(), s.head_dim);
        return ok_status();
    }
    Result<std::unique_ptr<LayerCache>> make_layer(const CacheShape& s, int, ByteBudget& budget) const override {
        return std::unique_ptr<LayerCache>(new TqPaperCache(s, budget, bits_, prod_));
    }

private:
    int bits_;
    bool prod_;
};

}  // namespace

std::unique_ptr<Method> make_tq_paper_method(int bits, bool prod) {
    return std::make_unique<TqPaperMethod>(bits, prod);
}

}  // namespace strata::kv

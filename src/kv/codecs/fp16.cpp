// fp16: IEEE half K/V, the default cache and the throughput reference (spec §4.1). Its
// default-mode attention is llama.cpp's non-flash CPU attention bit for bit, so the
// golden tests (model/model_test.cpp) hold: q rounded to f16 and dotted with f16 keys by
// ggml_vec_dot_f16, softmax with ggml's exp over a view padded to a multiple of 64 cells
// (padded cells get p = 0), probabilities rounded to f16, and each output channel a
// ggml f16 dot over positions. That last dot needs V transposed, so a page holds
// 64 tokens as K rows [64][n_head_kv*D] then V columns [n_head_kv*D][64]; 64-token pages
// keep ggml's 64-value chunking (dot_f16_ggml_chunked). Exact mode computes the same
// attention in f32 (lane_dot.h sums, the tile kernels' SIMD exp).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kv/codecs/codecs.h"
#include "kv/lane_dot.h"
#include "kv/tile_kernels.h"
#include "tensor/cpu/simd.h"
#include "kv/row_cache.h"
#include "ops/ggml_math.h"
#include "tensor/dtype.h"

namespace strata::kv {
namespace {

constexpr int kPage = 64;

// Query rows (row-major (token, head) index) dealt round-robin over the pool: a causal
// row's cost grows with its position, so contiguous halves would leave one thread with
// three quarters of a prompt's attention.
template <class Job>
void run_rows(ThreadPool* pool, int64_t n_rows, const Job& job) {
    if (!pool || pool->n_threads() == 1 || n_rows == 1) return job(0, n_rows, 1);
    pool->run([&](int ti, int nt) { job(ti, n_rows, nt); });
}

class Fp16Cache final : public LayerCache {
public:
    Fp16Cache(const CacheShape& s, ByteBudget& budget)
        : s_(s), kv_dim_(size_t(s.n_head_kv) * size_t(s.head_dim)), pool_(size_t(kPage) * kv_dim_ * 4, budget) {}
    ~Fp16Cache() override {
        for (uint32_t id : pages_) pool_.release(id);
    }

    Status append(const float* k, const float* v, int64_t n) override {
        for (int64_t i = 0; i < n; ++i, ++n_) {
            if (n_ % kPage == 0 && size_t(n_ / kPage) == pages_.size()) {
                auto id = pool_.alloc();
                if (!id) return id.error();
                pages_.push_back(*id);
            }
            uint16_t* page = page16(n_ / kPage);
            const size_t slot = size_t(n_ % kPage);
            for (size_t d = 0; d < kv_dim_; ++d) {
                page[slot * kv_dim_ + d] = fp32_to_fp16(k[size_t(i) * kv_dim_ + d]);
                page[size_t(kPage) * kv_dim_ + d * kPage + slot] = fp32_to_fp16(v[size_t(i) * kv_dim_ + d]);
            }
        }
        return ok_status();
    }

    void attend(const float* q, int64_t n, float* out, const AttendOpts& o) const override {
        if (o.exact) return attend_exact(q, n, out, o);
        if (o.flash) return attend_flash(q, n, out, o);
        const int64_t hd = s_.head_dim, n_head = s_.n_head, group = s_.n_head / s_.n_head_kv;
        const float scale = score_scale(o, int(hd));
        // llama.cpp's non-flash attention (-fa off). It multiplies prompt batches (2+ query rows) with tinyBLAS, whose dot
        // order differs from ggml_vec_dot_f16's (codecs.h); it needs a multiple of 16 values,
        // and we take it for head sizes that are whole 64-value chunks.
        const bool sgemm = n >= 2 && hd % 64 == 0;
        const int64_t n_pages = (n_ + kPage - 1) / kPage, n_kv_pad = n_pages * kPage;
        auto job = [&](int64_t b, int64_t e, int64_t step) {
            std::vector<float> scores(static_cast<size_t>(n_kv_pad)), probs(static_cast<size_t>(n_kv_pad));
            std::vector<uint16_t> q16(static_cast<size_t>(hd)), p16(static_cast<size_t>(n_kv_pad));
            std::vector<const uint16_t*> chunks(static_cast<size_t>(n_pages));
            for (int64_t jb = b; jb < e; jb += step) {
                const int64_t i = jb / n_head, h = jb % n_head, kvh = h / group;
                const KeySpan span = visible_keys(o, n_, n, i);
                const int64_t n_vis = span.end;
                const int64_t n_kv = n_kv_pad;
                const float* qrow = q + i * n_head * hd + h * hd;
                for (int64_t d = 0; d < hd; ++d) q16[size_t(d)] = fp32_to_fp16(qrow[d]);
                float mx = -INFINITY;
                for (int64_t j = 0; j < span.first; ++j) scores[size_t(j)] = -INFINITY;
                for (int64_t j = span.first; j < n_vis; ++j) {
                    const uint16_t* kr = page16(j / kPage) + size_t(j % kPage) * kv_dim_ + size_t(kvh * hd);
                    float s = 0;
                    if (sgemm) {
                        const uint16_t* kc[4] = {kr, kr + 64, kr + 128, kr + 192};
                        s = hd <= 256 ? dot_f16_sgemm_chunked(q16.data(), kc, hd / 64) : ops::dot_f16_ggml(q16.data(), kr, hd);
                    } else {
                        s = ops::dot_f16_ggml(q16.data(), kr, hd);
                    }
                    s *= scale;
                    scores[size_t(j)] = s;
                    mx = std::max(mx, s);
                }
                for (int64_t j = n_vis; j < n_kv; ++j) scores[size_t(j)] = -INFINITY;
                const double sum = ops::softmax_exp_ggml(scores.data(), probs.data(), n_kv, mx);
                const float inv = float(1.0 / sum);
                for (int64_t j = 0; j < n_kv; ++j) probs[size_t(j)] *= inv;
                float* od = out + i * n_head * hd + h * hd;
                for (int64_t j = 0; j < n_kv; ++j) p16[size_t(j)] = fp32_to_fp16(probs[size_t(j)]);
                for (int64_t d = 0; d < hd; ++d) {
                    for (int64_t c = 0; c < n_pages; ++c)
                        chunks[size_t(c)] = page16(c) + size_t(kPage) * kv_dim_ + size_t(kvh * hd + d) * kPage;
                    od[d] = sgemm ? dot_f16_sgemm_chunked(p16.data(), chunks.data(), n_pages)
                                  : dot_f16_ggml_chunked(p16.data(), chunks.data(), n_pages);
                }
            }
        };
        run_rows(o.pool, n * n_head, job);
    }

    void truncate(int64_t n) override {
        n_ = std::clamp<int64_t>(n, 0, n_);
        vrows_n_ = std::min(vrows_n_, n_);
        const size_t keep = size_t((n_ + kPage - 1) / kPage);
        while (pages_.size() > keep) {
            pool_.release(pages_.back());
            pages_.pop_back();
        }
        // Cells past n_ in the last page are padding that default mode reads with p = 0;
        // zero them so stale values can never be inf/NaN times zero.
        if (n_ % kPage) {
            uint16_t* page = page16(n_ / kPage);
            const size_t slot = size_t(n_ % kPage);
            std::fill(page + slot * kv_dim_, page + size_t(kPage) * kv_dim_, uint16_t(0));
            for (size_t d = 0; d < kv_dim_; ++d)
                std::fill(page + size_t(kPage) * kv_dim_ + d * kPage + slot, page + size_t(kPage) * kv_dim_ + (d + 1) * kPage,
                          uint16_t(0));
        }
    }

    int64_t n_tokens() const override { return n_; }
    // The flash path's V rows (vrows_) are a copy the non-flash layout does not need; they
    // count too.
    size_t bytes() const override { return pool_.bytes_in_use() + vrows_.capacity() * sizeof(uint16_t); }

    void decode(std::vector<float>& k, std::vector<float>& v) const override {
        k.assign(size_t(n_) * kv_dim_, 0.f);
        v.assign(k.size(), 0.f);
        for (int64_t t = 0; t < n_; ++t) {
            const uint16_t* page = page16(t / kPage);
            for (size_t d = 0; d < kv_dim_; ++d) {
                k[size_t(t) * kv_dim_ + d] = fp16_to_fp32(page[size_t(t % kPage) * kv_dim_ + d]);
                v[size_t(t) * kv_dim_ + d] = fp16_to_fp32(page[size_t(kPage) * kv_dim_ + d * kPage + size_t(t % kPage)]);
            }
        }
    }

private:
    uint16_t* page16(int64_t p) { return reinterpret_cast<uint16_t*>(pool_.page(pages_[size_t(p)])); }
    const uint16_t* page16(int64_t p) const {
        return reinterpret_cast<const uint16_t*>(pool_.page(pages_[size_t(p)]));
    }

    void attend_flash(const float* q, int64_t n, float* out, const AttendOpts& o) const;
    void attend_exact(const float* q, int64_t n, float* out, const AttendOpts& o) const;

    // V as rows [token][kv_dim] for the flash path, copied from the pages as tokens arrive
    // (rows below vrows_n_ are current; truncate() lowers it). Grows geometrically up to
    // the context size. attend() is const but writes this copy: a cache is attended by one
    // caller at a time (the forward pass, per sequence), as for any LayerCache. The copy is
    // counted by bytes() but not charged to the page budget.
    const uint16_t* v_rows() const {
        if (vrows_.size() < size_t(n_) * kv_dim_) {
            const int64_t rows = std::min(std::max<int64_t>(n_, 2 * vrows_n_), std::max<int64_t>(s_.n_ctx, n_));
            vrows_.resize(size_t(rows) * kv_dim_);
        }
        for (int64_t t = vrows_n_; t < n_; ++t) {
            const uint16_t* vc = page16(t / kPage) + size_t(kPage) * kv_dim_ + size_t(t % kPage);
            for (size_t d = 0; d < kv_dim_; ++d) vrows_[size_t(t) * kv_dim_ + d] = vc[d * kPage];
        }
        vrows_n_ = n_;
        return vrows_.data();
    }
    const uint16_t* k_row(int64_t t) const { return page16(t / kPage) + size_t(t % kPage) * kv_dim_; }

    CacheShape s_;
    size_t kv_dim_;
    mutable std::vector<uint16_t> vrows_;
    mutable int64_t vrows_n_ = 0;
    PagePool pool_;  // page: K [64][kv_dim] f16, then V [kv_dim][64] f16 (2 * 2 bytes per value)
    std::vector<uint32_t> pages_;
    int64_t n_ = 0;
};

// llama.cpp's CPU flash-attention op (ggml_compute_forward_flash_attn_ext_f16) for this
// cache, bit for bit (docs/design.md, "llama.cpp parity"). It has three bodies, chosen by
// the shape of the call, and each query row's result depends only on its own keys:
//  - one query row over fewer than 512 cells, or fewer than 64 query rows: per row, an
//    online softmax over the visible keys in order, Q rounded to f16, f16 key dots
//    (ggml_vec_dot_f16), libm expf, and the V sum kept in f16 (rounded after every step);
//  - one query row over 512 or more cells: the cells cut into n_threads equal chunks, each
//    chunk as above but left unnormalized (its V sum converted to f32), then the chunks
//    merged in order with expf rescaling;
//  - 64 or more query rows: 64-cell tiles; f32 scores (f32 Q, fma over d in order),
//    ggml's softmax on each tile with a running maximum, f32 V sums (fma over cells in
//    order).
// llama.cpp's cell count is the cache length padded to 256 (at most the context), which
// decides between the first two bodies.
void Fp16Cache::attend_flash(const float* q, int64_t n, float* out, const AttendOpts& o) const {
    const int64_t hd = s_.head_dim, n_head = s_.n_head, group = s_.n_head / s_.n_head_kv;
    const float scale = score_scale(o, int(hd));
    const int64_t n_cells = std::min(std::max<int64_t>(256, (n_ + 255) / 256 * 256), std::max(s_.n_ctx, n_));
    const int nth = std::max(1, o.n_threads);
    const bool split = n == 1 && n_cells >= 512;
    const bool tiled = n >= 64;
    const uint16_t* vrows = v_rows();
    // Tiled body: keys of each 64-cell tile transposed to f32 [kv head][tile][d][64], once.
    const int64_t n_tiles = (n_ + 63) / 64;
    std::vector<float> kt;
    if (tiled) {
        kt.assign(size_t(s_.n_head_kv * n_tiles * hd * 64), 0.f);
        for (int64_t kvh = 0; kvh < s_.n_head_kv; ++kvh)
            for (int64_t t = 0; t < n_; ++t) {
                const uint16_t* kr = k_row(t) + kvh * hd;
                float* dst = &kt[size_t(((kvh * n_tiles + t / 64) * hd) * 64 + t % 64)];
                for (int64_t d = 0; d < hd; ++d) dst[d * 64] = fp16_to_fp32(kr[d]);
            }
    }
    auto job = [&](int64_t b, int64_t e, int64_t step) {
        std::vector<uint16_t> q16(static_cast<size_t>(hd));
        std::vector<float> acc(static_cast<size_t>(hd)), fin(static_cast<size_t>(hd)), w, rescale;
        std::vector<const uint16_t*> vr;
        float kq[64];
        // Unnormalized online softmax over keys [j0, j1): f16 V sum into acc (as f32).
        auto one_chunk = [&](int64_t kvh, int64_t j0, int64_t j1, float* M, float* S) {
            *M = -INFINITY, *S = 0.f;
            std::fill(acc.begin(), acc.end(), 0.f);
            if (j1 <= j0) return;
            w.resize(size_t(j1 - j0)), rescale.resize(w.size()), vr.resize(w.size());
            for (int64_t j = j0; j < j1; ++j) {
                const float s = ops::dot_f16_ggml(k_row(j) + kvh * hd, q16.data(), hd) * scale;
                const float m_old = *M;
                float ms = 1.0f, vs = 1.0f;
                if (s > *M) {
                    *M = s;
                    ms = std::exp(m_old - s);
                } else {
                    vs = std::exp(s - *M);
                }
                const size_t k = size_t(j - j0);
                rescale[k] = ms, w[k] = vs, vr[k] = vrows + size_t(j) * kv_dim_ + size_t(kvh * hd);
                *S = std::fma(*S, ms, vs);
            }
            flash_accumulate_f16(acc.data(), vr.data(), rescale.data(), w.data(), j1 - j0, hd);
        };
        for (int64_t jb = b; jb < e; jb += step) {
            const int64_t i = jb / n_head, h = jb % n_head, kvh = h / group;
            // Masked cells (before a sliding window's start) are skipped, as llama.cpp's
            // flash op skips cells whose mask is -inf.
            const KeySpan span = visible_keys(o, n_, n, i);
            const int64_t n_vis = span.end, first = span.first;
            const float* qrow = q + i * n_head * hd + h * hd;
            float* od = out + i * n_head * hd + h * hd;
            if (tiled) {
                float M = -INFINITY, S = 0.f;
                std::fill(fin.begin(), fin.end(), 0.f);
                vr.resize(64);
                for (int64_t tile = first / 64; tile * 64 < n_vis; ++tile) {
                    const int64_t t0 = tile * 64, n_in = std::min<int64_t>(64, n_vis - t0);
                    flash_scores_f32(qrow, &kt[size_t((kvh * n_tiles + tile) * hd * 64)], hd, kq);
                    for (int t = 0; t < 64; ++t) kq[t] = t < n_in && t0 + t >= first ? kq[t] * scale : -INFINITY;
                    float tmax = -INFINITY;
                    for (int t = 0; t < n_in; ++t) tmax = std::max(tmax, kq[t]);
                    const float m_new = std::fmax(M, tmax);
                    if (m_new > M) {
                        const float ms = std::exp(M - m_new);
                        for (int64_t d = 0; d < hd; ++d) fin[size_t(d)] *= ms;
                        S *= ms;
                    }
                    M = m_new;
                    S = float(double(S) + ops::softmax_exp_ggml(kq, kq, 64, m_new));
                    for (int64_t t = 0; t < n_in; ++t) vr[size_t(t)] = vrows + size_t(t0 + t) * kv_dim_ + size_t(kvh * hd);
                    flash_accumulate_f32(fin.data(), vr.data(), kq, n_in, hd);
                }
                const float inv = S == 0.0f ? 0.0f : 1.0f / S;
                for (int64_t d = 0; d < hd; ++d) od[d] = fin[size_t(d)] * inv;
                continue;
            }
            for (int64_t d = 0; d < hd; ++d) q16[size_t(d)] = fp32_to_fp16(qrow[d]);
            if (!split) {
                float M, S;
                one_chunk(kvh, first, n_vis, &M, &S);
                const float inv = S == 0.0f ? 0.0f : 1.0f / S;
                for (int64_t d = 0; d < hd; ++d) od[d] = acc[size_t(d)] * inv;
                continue;
            }
            // Split: chunks of ceil(n_cells / nth) cells, merged in order.
            const int64_t cs = (n_cells + nth - 1) / nth;
            float M = -INFINITY, S = 0.f;
            std::fill(fin.begin(), fin.end(), 0.f);
            for (int c = 0; c < nth; ++c) {
                const int64_t c0 = c * cs;
                if (c0 >= n_cells) continue;
                float Mc, Sc;
                one_chunk(kvh, std::max(c0, first), std::min(c0 + cs, n_vis), &Mc, &Sc);
                if (Sc == 0.0f) continue;
                const float m_new = std::fmax(M, Mc);
                const float so = std::exp(M - m_new), sn = std::exp(Mc - m_new);
                for (int64_t d = 0; d < hd; ++d) fin[size_t(d)] = std::fma(fin[size_t(d)], so, acc[size_t(d)] * sn);
                S = std::fma(S, so, Sc * sn);
                M = m_new;
            }
            const float inv = S != 0.0f ? 1.0f / S : 1.0f;
            for (int64_t d = 0; d < hd; ++d) od[d] = S != 0.0f ? fin[size_t(d)] * inv : fin[size_t(d)];
        }
    };
    run_rows(o.pool, n * n_head, job);
}

// f32 mode: f32 scores (lane_dot_f16 of the f32 query with the f16 key), the tile kernels'
// exp, f32 probabilities against each f16 V column page by page. A job is a query row and
// a run of query heads sharing one KV head: all the heads of the group when there are
// enough (row, KV head) jobs to keep the threads busy (prefill), one head otherwise
// (decode), so that a few KV heads never idle a thread. Every (row, head) result is the
// same either way: lane_dot_f16_multi equals lane_dot_f16 per row bit for bit.
void Fp16Cache::attend_exact(const float* q, int64_t n, float* out, const AttendOpts& o) const {
    const int64_t hd = s_.head_dim, n_head = s_.n_head, hk = s_.n_head_kv, group = n_head / hk;
    const float scale = score_scale(o, int(hd));
    const TileKernels& kern = tile_kernels(cpu::active_isa());  // max / exp_sum
    const int threads = o.pool ? o.pool->n_threads() : 1;
    const int64_t per_job = n * hk >= 4 * threads ? group : 1;  // query heads per job
    const int64_t jobs_per_row = n_head / per_job;
    auto job = [&](int64_t b, int64_t e, int64_t step) {
        std::vector<float> scores, probs, dots(static_cast<size_t>(per_job)), acc(dots.size());
        std::vector<const float*> rows(static_cast<size_t>(per_job));
        for (int64_t jb = b; jb < e; jb += step) {
            const int64_t i = jb / jobs_per_row, h0 = (jb % jobs_per_row) * per_job, kvh = h0 / group;
            const KeySpan span = visible_keys(o, n_, n, i);
            const int64_t n_vis = span.end;
            scores.assign(size_t(per_job * n_vis), -INFINITY);
            probs.resize(scores.size());
            for (int64_t k = 0; k < per_job; ++k) rows[size_t(k)] = q + i * n_head * hd + (h0 + k) * hd;
            for (int64_t j = span.first; j < n_vis; ++j) {
                const uint16_t* kr = page16(j / kPage) + size_t(j % kPage) * kv_dim_ + size_t(kvh * hd);
                lane_dot_f16_multi(rows.data(), int(per_job), kr, hd, dots.data());
                for (int64_t k = 0; k < per_job; ++k) scores[size_t(k * n_vis + j)] = dots[size_t(k)] * scale;
            }
            for (int64_t k = 0; k < per_job; ++k) {
                float* sc = &scores[size_t(k * n_vis)];
                float* pr = &probs[size_t(k * n_vis)];
                float mx = -INFINITY;
                for (int64_t j = span.first; j < n_vis; ++j) mx = std::max(mx, sc[j]);
                std::copy_n(sc, n_vis, pr);
                const double sum = kern.exp_sum(pr, int(n_vis), mx);
                const float inv = float(1.0 / sum);
                for (int64_t j = 0; j < n_vis; ++j) pr[j] *= inv;
            }
            for (int64_t d = 0; d < hd; ++d) {
                std::fill(acc.begin(), acc.end(), 0.f);
                for (int64_t p0 = 0; p0 < n_vis; p0 += kPage) {
                    const uint16_t* vc = page16(p0 / kPage) + size_t(kPage) * kv_dim_ + size_t(kvh * hd + d) * kPage;
                    for (int64_t k = 0; k < per_job; ++k) rows[size_t(k)] = &probs[size_t(k * n_vis + p0)];
                    lane_dot_f16_multi(rows.data(), int(per_job), vc, std::min<int64_t>(kPage, n_vis - p0), dots.data());
                    for (int64_t k = 0; k < per_job; ++k) acc[size_t(k)] += dots[size_t(k)];
                }
                for (int64_t k = 0; k < per_job; ++k) out[i * n_head * hd + (h0 + k) * hd + d] = acc[size_t(k)];
            }
        }
    };
    run_rows(o.pool, n * jobs_per_row, job);
}

// Row form of the same storage, for mixing with another format via --kv-k / --kv-v.
class Fp16Codec final : public RowCodecT<Fp16Codec> {
public:
    using RowCodecT::RowCodecT;
    std::string_view name() const override { return "fp16"; }
    size_t row_bytes() const override { return size_t(head_dim_) * 2; }
    void encode(const float* x, uint8_t* dst) const override {
        auto* h = reinterpret_cast<uint16_t*>(dst);
        for (int d = 0; d < head_dim_; ++d) h[d] = fp32_to_fp16(x[d]);
    }
    void decode(const uint8_t* src, float* x) const override {
        auto* h = reinterpret_cast<const uint16_t*>(src);
        for (int d = 0; d < head_dim_; ++d) x[d] = fp16_to_fp32(h[d]);
    }
    float dot1(const float* qp, const uint8_t* row) const {
        auto* h = reinterpret_cast<const uint16_t*>(row);
        const float* f16 = fp16_table();
        return lane_dot(qp, head_dim_, [h, f16](int64_t d) { return f16[h[d]]; });
    }
    void axpy1(float w, const uint8_t* row, float* acc) const {
        auto* h = reinterpret_cast<const uint16_t*>(row);
        for (int d = 0; d < head_dim_; ++d) acc[d] += w * fp16_to_fp32(h[d]);
    }
};

class Fp16Method final : public Method {
public:
    std::string_view name() const override { return "fp16"; }
    std::string_view summary() const override { return "IEEE half (default; llama.cpp's arithmetic), 16 bits/value"; }
    Status check(const CacheShape& s) const override { return check_gqa(name(), s); }
    Result<std::unique_ptr<LayerCache>> make_layer(const CacheShape& s, int, ByteBudget& budget) const override {
        return std::unique_ptr<LayerCache>(new Fp16Cache(s, budget));
    }
    std::unique_ptr<RowCodec> row_codec(int head_dim) const override { return std::make_unique<Fp16Codec>(head_dim); }
};

}  // namespace

std::unique_ptr<Method> make_fp16_method() { return std::make_unique<Fp16Method>(); }

}  // namespace strata::kv

// TileCache (tile_cache.h): token lifecycle (sink -> tail -> flushed tile), truncation,
// and attention that reads sink and tail as FP16 vectors and tiles through the fused
// kernels of tile_kernels.h (AVX-512 / AVX2 / scalar, chosen at run time). Per (query,
// KV head, split of the tile range) job: scores of the g query heads over the split's
// positions, max, exp and sum, then the unnormalized weighted values; splits merge by
// log-sum-exp (the online-softmax form of spec §2.8 with one step per split).
#include "kv/tile_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "kv/codecs/codecs.h"
#include "kv/hadamard.h"
#include "kv/tile_kernels.h"
#include "tensor/dtype.h"

namespace strata::kv {

namespace {

class TileCache final : public LayerCache {
public:
    TileCache(const CacheShape& s, ByteBudget& budget, const TileConfig& c)
        : s_(s), c_(c), L_(tile_layout(c, s.head_dim)), row_(size_t(s.n_head_kv) * size_t(s.head_dim)),
          budget_(budget), pool_(L_.total * size_t(s.n_head_kv), budget) {}
    ~TileCache() override {
        for (uint32_t id : tiles_) pool_.release(id);
        budget_.give(fp_charged_);
    }

    Status init() {
        // Sink and a one-tile tail are reserved up front: they are the fixed per-sequence
        // cost of the format (spec §3); a longer tail during a prefill chunk is charged as it grows.
        return reserve_fp(size_t(c_.sink + c_.tile));
    }

    Status append(const float* k, const float* v, int64_t n) override {
        while (n_sink_ == c_.sink && n_tail() >= c_.tile) STRATA_TRY(flush_one());
        const int64_t to_sink = std::min<int64_t>(n, c_.sink - n_sink_);
        STRATA_TRY(reserve_fp(size_t(c_.sink) + size_t(n_tail() + n - to_sink)));
        std::vector<float> tmp(size_t(s_.head_dim));
        for (int64_t i = 0; i < n; ++i) {
            std::vector<uint16_t>& dk = n_sink_ < c_.sink ? sink_k_ : tail_k_;
            std::vector<uint16_t>& dv = n_sink_ < c_.sink ? sink_v_ : tail_v_;
            for (int h = 0; h < s_.n_head_kv; ++h) {
                push_row(dk, k + (i * s_.n_head_kv + h) * s_.head_dim, tmp);
                push_row(dv, v + (i * s_.n_head_kv + h) * s_.head_dim, tmp);
            }
            if (n_sink_ < c_.sink) ++n_sink_;
        }
        return ok_status();
    }

    void attend(const float* q, int64_t n, float* out, const AttendOpts& o) const override;

    void truncate(int64_t n) override {
        n = std::clamp<int64_t>(n, 0, n_tokens());
        const int64_t tiles_end = c_.sink + int64_t(tiles_.size()) * c_.tile;
        if (n <= n_sink_) {
            n_sink_ = int(n);
            sink_k_.resize(size_t(n) * row_), sink_v_.resize(size_t(n) * row_);
            for (uint32_t id : tiles_) pool_.release(id);
            tiles_.clear(), tail_k_.clear(), tail_v_.clear();
            return;
        }
        if (n >= tiles_end) {
            tail_k_.resize(size_t(n - tiles_end) * row_), tail_v_.resize(size_t(n - tiles_end) * row_);
            return;
        }
        // n falls inside tile ti: its kept tokens go back to the tail as decoded FP16.
        const size_t ti = size_t((n - c_.sink) / c_.tile);
        const int keep = int(n - c_.sink - int64_t(ti) * c_.tile);
        std::vector<float> kd(size_t(c_.tile) * size_t(s_.head_dim)), vd(kd.size());
        std::vector<uint16_t> nk(size_t(keep) * row_), nv(nk.size());
        for (int h = 0; h < s_.n_head_kv; ++h) {
            decode_tile(L_, pool_.page(tiles_[ti]) + size_t(h) * L_.total, kd.data(), vd.data());
            for (int t = 0; t < keep; ++t)
                for (int d = 0; d < s_.head_dim; ++d) {
                    nk[size_t(t) * row_ + size_t(h * s_.head_dim + d)] = fp32_to_fp16(kd[size_t(t * s_.head_dim + d)]);
                    nv[size_t(t) * row_ + size_t(h * s_.head_dim + d)] = fp32_to_fp16(vd[size_t(t * s_.head_dim + d)]);
                }
        }
        while (tiles_.size() > ti) pool_.release(tiles_.back()), tiles_.pop_back();
        tail_k_ = std::move(nk), tail_v_ = std::move(nv);
    }

    int64_t n_tokens() const override { return n_sink_ + int64_t(tiles_.size()) * c_.tile + n_tail(); }
    size_t bytes() const override { return pool_.bytes_in_use() + fp_charged_; }

    void decode(std::vector<float>& k, std::vector<float>& v) const override {
        const int D = s_.head_dim;
        k.clear(), v.clear();
        auto put_fp = [&](const std::vector<uint16_t>& src, std::vector<float>& dst) {
            for (size_t r = 0; r < src.size() / size_t(D); ++r) {
                std::vector<float> x(static_cast<size_t>(D));
                for (int d = 0; d < D; ++d) x[size_t(d)] = fp16_to_fp32(src[r * size_t(D) + size_t(d)]);
                if (c_.hadamard) fwht(x.data(), D);
                dst.insert(dst.end(), x.begin(), x.end());
            }
        };
        put_fp(sink_k_, k), put_fp(sink_v_, v);
        std::vector<float> kd(size_t(c_.tile) * size_t(D)), vd(kd.size());
        for (uint32_t id : tiles_) {
            std::vector<float> tk(size_t(c_.tile) * row_), tv(tk.size());
            for (int h = 0; h < s_.n_head_kv; ++h) {
                decode_tile(L_, pool_.page(id) + size_t(h) * L_.total, kd.data(), vd.data());
                for (int t = 0; t < c_.tile; ++t) {
                    if (c_.hadamard) fwht(&kd[size_t(t * D)], D), fwht(&vd[size_t(t * D)], D);
                    std::memcpy(&tk[size_t(t) * row_ + size_t(h * D)], &kd[size_t(t * D)], sizeof(float) * size_t(D));
                    std::memcpy(&tv[size_t(t) * row_ + size_t(h * D)], &vd[size_t(t * D)], sizeof(float) * size_t(D));
                }
            }
            k.insert(k.end(), tk.begin(), tk.end()), v.insert(v.end(), tv.begin(), tv.end());
        }
        put_fp(tail_k_, k), put_fp(tail_v_, v);
    }

private:
    const uint8_t* record(int64_t tile, int h) const { return pool_.page(tiles_[size_t(tile)]) + size_t(h) * L_.total; }
    int64_t n_tail() const { return int64_t(tail_k_.size() / row_); }

    void push_row(std::vector<uint16_t>& dst, const float* x, std::vector<float>& tmp) const {
        std::memcpy(tmp.data(), x, sizeof(float) * size_t(s_.head_dim));
        if (c_.hadamard) fwht(tmp.data(), s_.head_dim);
        for (int d = 0; d < s_.head_dim; ++d) dst.push_back(fp32_to_fp16(tmp[size_t(d)]));
    }

    Status reserve_fp(size_t tokens) {
        const size_t want = tokens * row_ * 2 * sizeof(uint16_t);  // K and V
        if (want > fp_charged_) {
            STRATA_TRY(budget_.take(want - fp_charged_));
            fp_charged_ = want;
        }
        return ok_status();
    }

    // Quantizes the oldest G tail tokens into a new tile page.
    Status flush_one() {
        auto id = pool_.alloc();
        if (!id) return id.error();
        const int D = s_.head_dim, G = c_.tile;
        std::vector<float> k(size_t(G) * size_t(D)), v(k.size());
        for (int h = 0; h < s_.n_head_kv; ++h) {
            for (int t = 0; t < G; ++t)
                for (int d = 0; d < D; ++d) {
                    k[size_t(t * D + d)] = fp16_to_fp32(tail_k_[size_t(t) * row_ + size_t(h * D + d)]);
                    v[size_t(t * D + d)] = fp16_to_fp32(tail_v_[size_t(t) * row_ + size_t(h * D + d)]);
                }
            encode_tile(c_, L_, k.data(), v.data(), pool_.page(*id) + size_t(h) * L_.total);
        }
        tiles_.push_back(*id);
        tail_k_.erase(tail_k_.begin(), tail_k_.begin() + int64_t(size_t(G) * row_));
        tail_v_.erase(tail_v_.begin(), tail_v_.begin() + int64_t(size_t(G) * row_));
        return ok_status();
    }

    CacheShape s_;
    TileConfig c_;
    TileLayout L_;
    size_t row_;  // n_head_kv * head_dim
    ByteBudget& budget_;
    mutable PagePool pool_;
    std::vector<uint32_t> tiles_;  // page table: one page per tile, token order
    int n_sink_ = 0;
    // FP16, token-major [tokens][n_head_kv][head_dim], rotated frame.
    std::vector<uint16_t> sink_k_, sink_v_, tail_k_, tail_v_;
    size_t fp_charged_ = 0;
};

void TileCache::attend(const float* q, int64_t n, float* out, const AttendOpts& o) const {
    const int hk = s_.n_head_kv, D = s_.head_dim, g = s_.n_head / s_.n_head_kv, G = c_.tile;
    const TileKernels& kern = tile_kernels_for(L_);
    const float scale = score_scale(o, D);
    const int64_t n_tok = n_tokens(), n_tiles = int64_t(tiles_.size());
    // Positions: sink [0, n_sink_), tiles [n_sink_, tiles_end), tail [tiles_end, n_tok).
    // While the sink is filling there are no tiles and no tail.
    const int64_t tiles_end = n_sink_ + n_tiles * G;
    // Split-K: decode gives n·hk jobs (3 for SmolLM2), which leaves threads idle (2 threads:
    // 2 jobs on one, 1 on the other). Splitting each job's tile range into ns parts makes
    // the job count a multiple of the thread count; partial results (max, sum, unnormalized
    // output) merge by log-sum-exp below (spec §7.2).
    const int threads = o.pool ? o.pool->n_threads() : 1;
    int64_t ns = 1;
    if (threads > 1 && n * hk < 4 * threads) {
        ns = threads / std::gcd(int64_t(threads), n * hk);
        ns = std::min<int64_t>(ns, std::max<int64_t>(1, n_tiles / 2));
    }
    const int64_t n_jobs = n * hk * ns;
    const size_t res_stride = size_t(g) * size_t(D + 2);  // acc [g][D], max [g], sum [g]
    std::vector<float> res(size_t(n_jobs) * res_stride);
    auto job = [&](int64_t b, int64_t e) {
        std::vector<float> qr(size_t(g) * size_t(D)), sc, scratch(tile_scratch_floats(L_, g));
        for (int64_t jb = b; jb < e; ++jb) {
            const int64_t i = jb / (hk * ns), s = jb % ns;
            const int h = int((jb / ns) % hk);
            const KeySpan span = visible_keys(o, n_tok, n, i);
            const int64_t n_vis = span.end;
            // Tiles hold only tokens older than this call's queries; the guard keeps that explicit.
            const int64_t vis_tiles = std::clamp<int64_t>((n_vis - n_sink_) / G, 0, n_tiles);
            const int64_t t_b = vis_tiles * s / ns, t_e = vis_tiles * (s + 1) / ns;
            const int n_head_fp = s == 0 ? int(std::min<int64_t>(n_sink_, n_vis)) : 0;
            const int n_tail_fp = s == ns - 1 ? int(std::max<int64_t>(0, n_vis - tiles_end)) : 0;
            const size_t ld = size_t(n_head_fp) + size_t(t_e - t_b) * size_t(G) + size_t(n_tail_fp);
            sc.resize(size_t(g) * ld);
            for (int j = 0; j < g; ++j) {
                const float* qs = q + (i * s_.n_head + h * g + j) * D;
                for (int d = 0; d < D; ++d) qr[size_t(j * D + d)] = qs[d] * scale;
                if (c_.hadamard) fwht(&qr[size_t(j * D)], D);
            }
            // Empty buffers (no sink / tail yet) have no rows to point into.
            auto rows = [&](const auto& v) { return v.empty() ? nullptr : v.data() + size_t(h * D); };
            const uint16_t* sink_k = rows(sink_k_);
            const uint16_t* sink_v = rows(sink_v_);
            const uint16_t* tail_k = rows(tail_k_);
            const uint16_t* tail_v = rows(tail_v_);
            float* tile_sc = sc.data() + n_head_fp;
            float* tail_sc = tile_sc + (t_e - t_b) * G;
            if (n_head_fp) kern.fp_scores(sink_k, row_, n_head_fp, D, qr.data(), g, sc.data(), ld);
            for (int64_t t = t_b; t < t_e; ++t)
                kern.scores(L_, record(t, h), qr.data(), g, tile_sc + (t - t_b) * G, ld, scratch.data());
            if (n_tail_fp) kern.fp_scores(tail_k, row_, n_tail_fp, D, qr.data(), g, tail_sc, ld);
            // Positions before a sliding window's start are masked out of the scores.
            if (span.first > 0)
                for (int j = 0; j < g; ++j) {
                    float* sj = &sc[size_t(j) * ld];
                    for (int k = 0; k < n_head_fp && k < span.first; ++k) sj[k] = -INFINITY;
                    for (int64_t t = t_b; t < t_e; ++t)
                        for (int k = 0; k < G; ++k)
                            if (n_sink_ + t * G + k < span.first) sj[n_head_fp + (t - t_b) * G + k] = -INFINITY;
                    for (int k = 0; k < n_tail_fp; ++k)
                        if (tiles_end + k < span.first) sj[n_head_fp + (t_e - t_b) * G + k] = -INFINITY;
                }
            float* r = &res[size_t(jb) * res_stride];
            float* acc = r;
            std::fill(acc, acc + size_t(g) * size_t(D), 0.f);
            for (int j = 0; j < g; ++j) {
                float* sj = &sc[size_t(j) * ld];
                const float mx = ld ? kern.max(sj, int(ld)) : -INFINITY;
                r[size_t(g * D + j)] = mx;
                if (mx == -INFINITY) {  // nothing visible in this split
                    std::fill(sj, sj + ld, 0.f);
                    r[size_t(g * (D + 1) + j)] = 0.f;
                } else {
                    r[size_t(g * (D + 1) + j)] = float(kern.exp_sum(sj, int(ld), mx));
                }
            }
            if (n_head_fp) kern.fp_values(sink_v, row_, n_head_fp, D, sc.data(), ld, g, acc);
            for (int64_t t = t_b; t < t_e; ++t)
                kern.values(L_, record(t, h), tile_sc + (t - t_b) * G, ld, g, acc, scratch.data());
            if (n_tail_fp) kern.fp_values(tail_v, row_, n_tail_fp, D, tail_sc, ld, g, acc);
        }
    };
    if (o.pool && n_jobs > 1) o.pool->parallel_for(n_jobs, 1, job);
    else job(0, n_jobs);
    // Merge the splits of each (query, KV head) and rotate back.
    std::vector<float> y(static_cast<size_t>(D));
    for (int64_t i = 0; i < n; ++i)
        for (int h = 0; h < hk; ++h)
            for (int j = 0; j < g; ++j) {
                const float* r0 = &res[size_t((i * hk + h) * ns) * res_stride];
                float m = -INFINITY;
                for (int64_t s = 0; s < ns; ++s) m = std::max(m, r0[size_t(s) * res_stride + size_t(g * D + j)]);
                std::fill(y.begin(), y.end(), 0.f);
                double l = 0;
                for (int64_t s = 0; s < ns; ++s) {
                    const float* r = r0 + size_t(s) * res_stride;
                    const float ls = r[size_t(g * (D + 1) + j)];
                    if (ls == 0.f) continue;
                    const float a = ns == 1 ? 1.f : std::exp(r[size_t(g * D + j)] - m);
                    l += double(a) * ls;
                    for (int d = 0; d < D; ++d) y[size_t(d)] += a * r[size_t(j * D + d)];
                }
                const float inv = float(1.0 / l);
                for (int d = 0; d < D; ++d) y[size_t(d)] *= inv;
                if (c_.hadamard) fwht(y.data(), D);
                std::memcpy(out + (i * s_.n_head + h * g + j) * D, y.data(), sizeof(float) * size_t(D));
            }
}

}  // namespace

Status TileMethod::check(const CacheShape& s) const {
    STRATA_TRY(check_pow2(c_.name, s));
    if (s.n_head / s.n_head_kv > 64)
        return unsupported("kv {}: query group of {} heads per KV head is above the 64 supported", c_.name,
                           s.n_head / s.n_head_kv);
    return ok_status();
}

Result<std::unique_ptr<LayerCache>> make_tile_cache(const CacheShape& s, ByteBudget& budget, const TileConfig& c) {
    auto cache = std::make_unique<TileCache>(s, budget, c);
    STRATA_TRY(cache->init());
    return std::unique_ptr<LayerCache>(std::move(cache));
}

}  // namespace strata::kv

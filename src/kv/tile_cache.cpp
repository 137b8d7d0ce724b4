// TileCache (tile_cache.h): token lifecycle (sink -> tail -> flushed tile), truncation,
// and attention that reads sink and tail as FP16 vectors and tiles through the fused
// kernels of tile_format.h. Softmax is two-pass over all visible positions (max, then
// exp), which equals the online-softmax form of spec §2.8 up to round-off.
#include "kv/tile_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kv/codecs/codecs.h"
#include "kv/hadamard.h"
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
    const float scale = 1.0f / std::sqrt(float(D));
    const int64_t n_tok = n_tokens(), tiles_end = c_.sink + int64_t(tiles_.size()) * G;
    auto job = [&](int64_t b, int64_t e) {
        std::vector<float> qr(size_t(g) * size_t(D)), sc, acc(size_t(g) * size_t(D)), partial(size_t(g) * size_t(D));
        std::vector<uint8_t> codes(size_t(std::max(D, G)));
        float scratch[64];
        for (int64_t jb = b; jb < e; ++jb) {
            const int64_t i = jb / hk;
            const int h = int(jb % hk);
            const int64_t n_vis = n_tok - n + i + 1;
            const size_t ld = size_t(n_vis);
            sc.assign(size_t(g) * ld, 0.f);
            for (int j = 0; j < g; ++j) {
                const float* qs = q + (i * s_.n_head + h * g + j) * D;
                for (int d = 0; d < D; ++d) qr[size_t(j * D + d)] = qs[d] * scale;
                if (c_.hadamard) fwht(&qr[size_t(j * D)], D);
            }
            // Position p maps to: sink [0, n_sink), tiles [sink, tiles_end), tail after.
            auto fp_row = [&](int64_t p, bool key) -> const uint16_t* {
                const std::vector<uint16_t>& src = p < n_sink_ ? (key ? sink_k_ : sink_v_) : (key ? tail_k_ : tail_v_);
                const int64_t r = p < n_sink_ ? p : p - (n_sink_ == c_.sink ? tiles_end : n_sink_);
                return src.data() + size_t(r) * row_ + size_t(h * D);
            };
            auto is_fp = [&](int64_t p) { return p < n_sink_ || p >= tiles_end || n_sink_ < c_.sink; };
            for (int64_t p = 0; p < n_vis; ++p) {
                if (!is_fp(p)) continue;
                const uint16_t* kr = fp_row(p, true);
                for (int j = 0; j < g; ++j) {
                    float s = 0;
                    for (int d = 0; d < D; ++d) s += qr[size_t(j * D + d)] * fp16_to_fp32(kr[d]);
                    sc[size_t(j) * ld + size_t(p)] = s;
                }
            }
            if (n_sink_ == c_.sink)
                for (size_t t = 0; t < tiles_.size(); ++t) {
                    const int64_t p0 = c_.sink + int64_t(t) * G;
                    if (p0 + G > n_vis) break;  // tiles hold only tokens older than this call's
                    tile_scores(L_, pool_.page(tiles_[t]) + size_t(h) * L_.total, qr.data(), g, &sc[size_t(p0)], ld,
                                codes.data(), scratch);
                }
            for (int j = 0; j < g; ++j) {
                float* sj = &sc[size_t(j) * ld];
                const float mx = *std::max_element(sj, sj + n_vis);
                double sum = 0;
                for (int64_t p = 0; p < n_vis; ++p) sum += sj[p] = std::exp(sj[p] - mx);
                const float inv = float(1.0 / sum);
                for (int64_t p = 0; p < n_vis; ++p) sj[p] *= inv;
            }
            std::fill(acc.begin(), acc.end(), 0.f);
            for (int64_t p = 0; p < n_vis; ++p) {
                if (!is_fp(p)) continue;
                const uint16_t* vr = fp_row(p, false);
                for (int j = 0; j < g; ++j) {
                    const float w = sc[size_t(j) * ld + size_t(p)];
                    for (int d = 0; d < D; ++d) acc[size_t(j * D + d)] += w * fp16_to_fp32(vr[d]);
                }
            }
            if (n_sink_ == c_.sink)
                for (size_t t = 0; t < tiles_.size(); ++t) {
                    const int64_t p0 = c_.sink + int64_t(t) * G;
                    if (p0 + G > n_vis) break;
                    tile_values(L_, pool_.page(tiles_[t]) + size_t(h) * L_.total, &sc[size_t(p0)], ld, g, acc.data(),
                                codes.data(), partial.data());
                }
            for (int j = 0; j < g; ++j) {
                if (c_.hadamard) fwht(&acc[size_t(j * D)], D);
                std::memcpy(out + (i * s_.n_head + h * g + j) * D, &acc[size_t(j * D)], sizeof(float) * size_t(D));
            }
        }
    };
    if (o.pool) o.pool->parallel_for(n * hk, 1, job);
    else job(0, n * hk);
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

// LayerCache for per-token formats (row_cache.h). Attention per (query, KV head) job:
// prepared queries for the head's query group, scores page by page through the K codec's
// fused dot, a two-pass softmax (the tile kernels' SIMD max and exp with a double sum),
// then the V codec's fused
// weighted accumulate page by page. Encoded rows are read in place; nothing is decoded
// into a full-precision buffer.
#include "kv/row_cache.h"

#include "kv/lane_dot.h"
#include "kv/tile_kernels.h"
#include "tensor/cpu/simd.h"
#include "tensor/dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace strata::kv {

const float* fp16_table() {
    static const std::vector<float> t = [] {
        std::vector<float> v(65536);
        for (uint32_t h = 0; h < 65536; ++h) v[h] = fp16_to_fp32(uint16_t(h));
        return v;
    }();
    return t.data();
}

void RowCodec::prepare_query(const float* q, float* qp) const {
    std::memcpy(qp, q, sizeof(float) * size_t(head_dim_));
}

namespace {

class RowCache final : public LayerCache {
public:
    RowCache(const CacheShape& s, ByteBudget& budget, std::shared_ptr<const RowCodec> k,
             std::shared_ptr<const RowCodec> v)
        : s_(s), k_(std::move(k)), v_(std::move(v)), kb_(k_->row_bytes()), vb_(v_->row_bytes()),
          pool_(size_t(kRowPageTokens) * size_t(s.n_head_kv) * (kb_ + vb_), budget) {}

    ~RowCache() override {
        for (uint32_t id : pages_) pool_.release(id);
    }

    Status append(const float* k, const float* v, int64_t n) override {
        const int hk = s_.n_head_kv, D = s_.head_dim;
        for (int64_t i = 0; i < n; ++i, ++n_) {
            const int64_t slot = n_ % kRowPageTokens;
            if (slot == 0 && size_t(n_ / kRowPageTokens) == pages_.size()) {
                auto id = pool_.alloc();
                if (!id) return id.error();
                pages_.push_back(*id);
            }
            uint8_t* page = pool_.page(pages_[size_t(n_ / kRowPageTokens)]);
            for (int h = 0; h < hk; ++h) {
                k_->encode(k + (i * hk + h) * D, krow(page, slot, h));
                v_->encode(v + (i * hk + h) * D, vrow(page, slot, h));
            }
        }
        return ok_status();
    }

    void attend(const float* q, int64_t n, float* out, const AttendOpts& o) const override {
        const int hk = s_.n_head_kv, D = s_.head_dim, g = s_.n_head / s_.n_head_kv;
        const float scale = score_scale(o, D);
        const TileKernels& kern = tile_kernels(cpu::active_isa());  // max / exp_sum only
        auto job = [&](int64_t b, int64_t e) {
            std::vector<float> qs(static_cast<size_t>(D)), qp(size_t(g) * size_t(D)), sc, acc(static_cast<size_t>(D));
            for (int64_t jb = b; jb < e; ++jb) {
                const int64_t i = jb / hk;
                const int h = int(jb % hk);
                const KeySpan span = visible_keys(o, n_, n, i);
                const int64_t n_vis = span.end;
                sc.assign(size_t(g) * size_t(n_vis), 0.f);
                for (int j = 0; j < g; ++j) {
                    const float* qr = q + (i * s_.n_head + h * g + j) * D;
                    for (int d = 0; d < D; ++d) qs[size_t(d)] = qr[d] * scale;
                    k_->prepare_query(qs.data(), &qp[size_t(j * D)]);
                }
                for (int64_t p0 = 0; p0 < n_vis; p0 += kRowPageTokens) {
                    const int cnt = int(std::min<int64_t>(kRowPageTokens, n_vis - p0));
                    const uint8_t* page = pool_.page(pages_[size_t(p0 / kRowPageTokens)]);
                    for (int j = 0; j < g; ++j)
                        k_->dot_rows(&qp[size_t(j * D)], krow(page, 0, h), size_t(hk) * kb_, cnt,
                                     &sc[size_t(j) * size_t(n_vis) + size_t(p0)]);
                }
                for (int j = 0; j < g; ++j) {
                    float* sj = &sc[size_t(j) * size_t(n_vis)];
                    std::fill(sj, sj + span.first, -INFINITY);  // before a sliding window
                    const double sum = kern.exp_sum(sj, int(n_vis), kern.max(sj, int(n_vis)));
                    const float inv = float(1.0 / sum);
                    for (int64_t t = 0; t < n_vis; ++t) sj[t] *= inv;
                    std::fill(acc.begin(), acc.end(), 0.f);
                    for (int64_t p0 = 0; p0 < n_vis; p0 += kRowPageTokens) {
                        const int cnt = int(std::min<int64_t>(kRowPageTokens, n_vis - p0));
                        const uint8_t* page = pool_.page(pages_[size_t(p0 / kRowPageTokens)]);
                        v_->axpy_rows(sj + p0, vrow(page, 0, h), size_t(hk) * vb_, cnt, acc.data());
                    }
                    v_->finish_output(acc.data());
                    std::memcpy(out + (i * s_.n_head + h * g + j) * D, acc.data(), sizeof(float) * size_t(D));
                }
            }
        };
        if (o.pool) o.pool->parallel_for(n * hk, 1, job);
        else job(0, n * hk);
    }

    void truncate(int64_t n) override {
        n_ = std::clamp<int64_t>(n, 0, n_);
        const size_t keep = size_t((n_ + kRowPageTokens - 1) / kRowPageTokens);
        while (pages_.size() > keep) {
            pool_.release(pages_.back());
            pages_.pop_back();
        }
    }

    int64_t n_tokens() const override { return n_; }
    size_t bytes() const override { return pool_.bytes_in_use(); }

    void decode(std::vector<float>& k, std::vector<float>& v) const override {
        const int hk = s_.n_head_kv, D = s_.head_dim;
        k.assign(size_t(n_) * size_t(hk * D), 0.f);
        v.assign(k.size(), 0.f);
        for (int64_t t = 0; t < n_; ++t) {
            const uint8_t* page = pool_.page(pages_[size_t(t / kRowPageTokens)]);
            for (int h = 0; h < hk; ++h) {
                k_->decode(krow(page, t % kRowPageTokens, h), &k[size_t((t * hk + h) * D)]);
                v_->decode(vrow(page, t % kRowPageTokens, h), &v[size_t((t * hk + h) * D)]);
            }
        }
    }

private:
    uint8_t* krow(uint8_t* page, int64_t slot, int h) const {
        return page + (size_t(slot) * size_t(s_.n_head_kv) + size_t(h)) * kb_;
    }
    const uint8_t* krow(const uint8_t* page, int64_t slot, int h) const {
        return page + (size_t(slot) * size_t(s_.n_head_kv) + size_t(h)) * kb_;
    }
    uint8_t* vrow(uint8_t* page, int64_t slot, int h) const {
        return page + size_t(kRowPageTokens) * size_t(s_.n_head_kv) * kb_ +
               (size_t(slot) * size_t(s_.n_head_kv) + size_t(h)) * vb_;
    }
    const uint8_t* vrow(const uint8_t* page, int64_t slot, int h) const {
        return page + size_t(kRowPageTokens) * size_t(s_.n_head_kv) * kb_ +
               (size_t(slot) * size_t(s_.n_head_kv) + size_t(h)) * vb_;
    }

    CacheShape s_;
    std::shared_ptr<const RowCodec> k_, v_;
    size_t kb_, vb_;
    PagePool pool_;
    std::vector<uint32_t> pages_;  // page table, token order
    int64_t n_ = 0;
};

}  // namespace

Result<std::unique_ptr<LayerCache>> make_row_cache(const CacheShape& s, ByteBudget& budget,
                                                   std::shared_ptr<const RowCodec> k,
                                                   std::shared_ptr<const RowCodec> v) {
    return std::unique_ptr<LayerCache>(new RowCache(s, budget, std::move(k), std::move(v)));
}

}  // namespace strata::kv

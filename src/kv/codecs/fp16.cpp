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
        const int64_t hd = s_.head_dim, n_head = s_.n_head, group = s_.n_head / s_.n_head_kv;
        const float scale = 1.0f / std::sqrt(float(hd));
        const bool ggml = !o.exact;
        const float* f16 = fp16_table();
        const TileKernels& kern = tile_kernels(cpu::active_isa());  // exact mode: max / exp_sum
        const int64_t n_pages = (n_ + kPage - 1) / kPage, n_kv_pad = n_pages * kPage;
        auto job = [&](int64_t b, int64_t e) {
            std::vector<float> scores(static_cast<size_t>(n_kv_pad)), probs(static_cast<size_t>(n_kv_pad));
            std::vector<uint16_t> q16(static_cast<size_t>(hd)), p16(static_cast<size_t>(n_kv_pad));
            std::vector<const uint16_t*> chunks(static_cast<size_t>(n_pages));
            for (int64_t jb = b; jb < e; ++jb) {
                const int64_t i = jb / n_head, h = jb % n_head, kvh = h / group;
                const int64_t n_vis = n_ - n + i + 1;
                const int64_t n_kv = ggml ? n_kv_pad : n_vis;
                const float* qrow = q + i * n_head * hd + h * hd;
                for (int64_t d = 0; d < hd; ++d) q16[size_t(d)] = fp32_to_fp16(qrow[d]);
                float mx = -INFINITY;
                for (int64_t j = 0; j < n_vis; ++j) {
                    const uint16_t* kr = page16(j / kPage) + size_t(j % kPage) * kv_dim_ + size_t(kvh * hd);
                    float s = 0;
                    if (ggml) {
                        s = ops::dot_f16_ggml(q16.data(), kr, hd);
                    } else {
                        s = lane_dot(qrow, hd, [kr, f16](int64_t d) { return f16[kr[d]]; });
                    }
                    s *= scale;
                    scores[size_t(j)] = s;
                    mx = std::max(mx, s);
                }
                for (int64_t j = n_vis; j < n_kv; ++j) scores[size_t(j)] = -INFINITY;
                double sum;
                if (ggml) {
                    sum = ops::softmax_exp_ggml(scores.data(), probs.data(), n_kv, mx);
                } else {
                    std::copy_n(scores.data(), n_kv, probs.data());
                    sum = kern.exp_sum(probs.data(), int(n_kv), mx);
                }
                const float inv = float(1.0 / sum);
                for (int64_t j = 0; j < n_kv; ++j) probs[size_t(j)] *= inv;
                float* od = out + i * n_head * hd + h * hd;
                if (ggml) {
                    for (int64_t j = 0; j < n_kv; ++j) p16[size_t(j)] = fp32_to_fp16(probs[size_t(j)]);
                    for (int64_t d = 0; d < hd; ++d) {
                        for (int64_t c = 0; c < n_pages; ++c)
                            chunks[size_t(c)] = page16(c) + size_t(kPage) * kv_dim_ + size_t(kvh * hd + d) * kPage;
                        od[d] = dot_f16_ggml_chunked(p16.data(), chunks.data(), n_pages);
                    }
                } else {
                    for (int64_t d = 0; d < hd; ++d) {
                        float acc = 0;
                        for (int64_t p0 = 0; p0 < n_kv; p0 += kPage) {
                            const uint16_t* vc = page16(p0 / kPage) + size_t(kPage) * kv_dim_ + size_t(kvh * hd + d) * kPage;
                            acc += lane_dot(&probs[size_t(p0)], std::min<int64_t>(kPage, n_kv - p0),
                                            [vc, f16](int64_t j) { return f16[vc[j]]; });
                        }
                        od[d] = acc;
                    }
                }
            }
        };
        if (o.pool) o.pool->parallel_for(n * n_head, 1, job);
        else job(0, n * n_head);
    }

    void truncate(int64_t n) override {
        n_ = std::clamp<int64_t>(n, 0, n_);
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
    size_t bytes() const override { return pool_.bytes_in_use(); }

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

    CacheShape s_;
    size_t kv_dim_;
    PagePool pool_;  // page: K [64][kv_dim] f16, then V [kv_dim][64] f16 (2 * 2 bytes per value)
    std::vector<uint32_t> pages_;
    int64_t n_ = 0;
};

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

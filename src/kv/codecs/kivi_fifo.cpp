// KIVI as its own paper and code define it (spec §4.3; jy-yuan/KIVI models/llama_kivi.py):
// kivi2_g32_r128 / kivi4_g32_r128. No sink, no rotation.
//  - Keys per channel: groups of G = 32 tokens; in a group each channel gets asymmetric
//    min/max RTN, scale = (max - min)/qmax and minimum stored in FP16, codes
//    round-half-to-even((x - min)/scale) clamped to [0, qmax] (torch.round), computed with
//    the FP16 scale/minimum as KIVI does in the model's FP16.
//  - Values per token: the same rule on groups of 32 channels.
//  - Full-precision residual, R = 128 (spec §4.3): keys accumulate in an FP16 buffer; when
//    it holds R tokens after a step, the whole buffer is quantized (R/G groups) and cleared.
//    Values are a FIFO: after a step, if more than R FP values exist, the oldest ones are
//    quantized until R remain. After a multi-token append (prefill) the same rules give
//    KIVI's prefill split: keys, the largest multiple of R quantized, the rest FP; values,
//    all but the last R quantized.
//  - Timing: KIVI attends the new token(s) in FP and quantizes after attention; here the
//    quantization due after a step runs at the start of the next append (as tile_cache
//    does for KVarN), so attention at step T sees R·floor((T-1)/R) quantized keys and
//    max(0, T-R-1) quantized values (R+1 FP values in the steady state).
// Storage (allocator pages):
//  - K: one page per 32-token group, one record per KV head:
//      codes [D][G·b/8] (a channel's 32 tokens contiguous) | scale[D] FP16 | min[D] FP16
//  - V: pages of 64 tokens, rows [token][KV head] of
//      codes [D·b/8] (a token's channels contiguous) | scale[D/32] FP16 | min[D/32] FP16
//    Codes are packed LSB-first within bytes (code i of a run at byte i/p, bit (i mod p)·b,
//    p = 8/b), which is KIVI's own little-endian int32 packing (quant/new_pack.py).
//  - FP16 residual buffers [tokens][n_head_kv][D] for keys and values; R key rows and R+1
//    value rows are reserved up front (the steady state), more while a chunk is pending.
// Bits per quantized value: b + 32/32 = 3 (b=2) or 5 (b=4): 4320 / 7200 bytes per token
// for SmolLM2 (30 layers, 3 KV heads, D = 64) outside the residual.
// Attention (fused, nothing is decoded to a full-precision copy): per 32-token key group
// a[c] = q[c]·scale[c] and beta = q·min fold the channel parameters into the query, so a
// score is beta + sum_c a[c]·code[c][t]; per value row the group's scale and minimum fold
// into the softmax weight. FP16 residual rows use the tile formats' FP16 row kernels
// (tile_kernels.h, SIMD); the quantized parts are plain C++ loops over 32 unpacked codes
// that the compiler vectorizes (a quality baseline; not hand-tuned).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kv/codecs/codecs.h"
#include "kv/page_pool.h"
#include "kv/tile_kernels.h"
#include "tensor/dtype.h"

namespace strata::kv {

namespace {

constexpr int kGroup = 32;        // G: tokens per key group, channels per value group
constexpr int kResidual = 128;    // R
constexpr int kVPageTokens = 64;  // value rows per page

inline float half(const uint16_t* p, int i) { return fp16_to_fp32(p[i]); }

// Asymmetric min/max RTN of 32 values x[0], x[stride], ... into 32 codes packed LSB-first.
void quant_group(const float* x, size_t stride, int bits, uint8_t* packed, uint16_t& scale16, uint16_t& min16) {
    const int qmax = (1 << bits) - 1;
    float lo = x[0], hi = x[0];
    for (int i = 1; i < kGroup; ++i) lo = std::min(lo, x[size_t(i) * stride]), hi = std::max(hi, x[size_t(i) * stride]);
    scale16 = fp32_to_fp16((hi - lo) / float(qmax));
    min16 = fp32_to_fp16(lo);
    const float s = fp16_to_fp32(scale16), m = fp16_to_fp32(min16);
    const int p = 8 / bits;
    std::memset(packed, 0, size_t(kGroup * bits / 8));
    for (int i = 0; i < kGroup; ++i) {
        float c = 0.f;
        if (s > 0.f) {
            c = std::clamp((x[size_t(i) * stride] - m) / s, 0.f, float(qmax));
            c = (c + 0x1.8p23f) - 0x1.8p23f;  // round half to even (default rounding mode)
        }
        packed[i / p] |= uint8_t(int(c) << ((i % p) * bits));
    }
}

// 32 packed codes -> 32 floats.
inline void unpack32(const uint8_t* src, int bits, float* out) {
    if (bits == 2) {
        for (int i = 0; i < 8; ++i) {
            const unsigned b = src[i];
            out[4 * i] = float(b & 3), out[4 * i + 1] = float((b >> 2) & 3);
            out[4 * i + 2] = float((b >> 4) & 3), out[4 * i + 3] = float(b >> 6);
        }
    } else {
        for (int i = 0; i < 16; ++i) out[2 * i] = float(src[i] & 15), out[2 * i + 1] = float(src[i] >> 4);
    }
}

class KiviFifoCache final : public LayerCache {
public:
    KiviFifoCache(const CacheShape& s, ByteBudget& budget, int bits)
        : s_(s), bits_(bits), D_(s.head_dim), hk_(s.n_head_kv), row_(size_t(hk_) * size_t(D_)),
          kcodes_(size_t(D_) * kGroup * size_t(bits) / 8), krec_(kcodes_ + 4 * size_t(D_)),
          vcodes_(size_t(D_) * size_t(bits) / 8), vrow_(vcodes_ + 4 * size_t(D_ / kGroup)), budget_(budget),
          kpool_(krec_ * size_t(hk_), budget), vpool_(size_t(kVPageTokens) * size_t(hk_) * vrow_, budget) {}
    ~KiviFifoCache() override {
        for (uint32_t id : kpages_) kpool_.release(id);
        for (uint32_t id : vpages_) vpool_.release(id);
        budget_.give(fp_charged_);
    }

    Status init() { return charge_fp(0, 0); }

    Status append(const float* k, const float* v, int64_t n) override {
        STRATA_TRY(flush_pending());
        STRATA_TRY(charge_fp(kf() + n, vf() + n));
        for (int64_t i = 0; i < n * int64_t(row_); ++i) fp_k_.push_back(fp32_to_fp16(k[i]));
        for (int64_t i = 0; i < n * int64_t(row_); ++i) fp_v_.push_back(fp32_to_fp16(v[i]));
        return ok_status();
    }

    void attend(const float* q, int64_t n, float* out, const AttendOpts& o) const override;

    void truncate(int64_t n) override {
        n = std::clamp<int64_t>(n, 0, n_tokens());
        // Values: per-token rows, cut anywhere.
        if (n <= nqv_) {
            nqv_ = n, fp_v_.clear();
            const size_t keep = size_t((n + kVPageTokens - 1) / kVPageTokens);
            while (vpages_.size() > keep) vpool_.release(vpages_.back()), vpages_.pop_back();
        } else {
            fp_v_.resize(size_t(n - nqv_) * row_);
        }
        // Keys: a cut inside a quantized group moves the group's kept tokens back to the FP
        // residual as decoded values.
        if (n <= nqk_) {
            const size_t kg = size_t(n / kGroup);
            const int keep = int(n % kGroup);
            std::vector<float> kd(size_t(kGroup) * row_);
            if (keep) decode_kgroup(kg, kd.data());
            fp_k_.clear();
            for (size_t i = 0; i < size_t(keep) * row_; ++i) fp_k_.push_back(fp32_to_fp16(kd[i]));
            while (kpages_.size() > kg) kpool_.release(kpages_.back()), kpages_.pop_back();
            nqk_ = int64_t(kg) * kGroup;
        } else {
            fp_k_.resize(size_t(n - nqk_) * row_);
        }
        (void)charge_fp(kf(), vf());  // shrinks or stays: cannot fail
    }

    int64_t n_tokens() const override { return nqk_ + kf(); }
    size_t bytes() const override { return kpool_.bytes_in_use() + vpool_.bytes_in_use() + fp_charged_; }

    void decode(std::vector<float>& k, std::vector<float>& v) const override {
        const int64_t nt = n_tokens();
        k.assign(size_t(nt) * row_, 0.f), v.assign(k.size(), 0.f);
        for (size_t gi = 0; gi < kpages_.size(); ++gi) decode_kgroup(gi, &k[gi * kGroup * row_]);
        for (size_t i = 0; i < fp_k_.size(); ++i) k[size_t(nqk_) * row_ + i] = fp16_to_fp32(fp_k_[i]);
        for (int64_t t = 0; t < nqv_; ++t)
            for (int h = 0; h < hk_; ++h) decode_vrow(vrow(t, h), &v[size_t(t) * row_ + size_t(h * D_)]);
        for (size_t i = 0; i < fp_v_.size(); ++i) v[size_t(nqv_) * row_ + i] = fp16_to_fp32(fp_v_[i]);
    }

private:
    int64_t kf() const { return int64_t(fp_k_.size() / row_); }
    int64_t vf() const { return int64_t(fp_v_.size() / row_); }
    const uint8_t* krec(size_t group, int h) const { return kpool_.page(kpages_[group]) + size_t(h) * krec_; }
    const uint8_t* vrow(int64_t t, int h) const {
        return vpool_.page(vpages_[size_t(t / kVPageTokens)]) +
               (size_t(t % kVPageTokens) * size_t(hk_) + size_t(h)) * vrow_;
    }

    uint8_t* vrow_mut(int64_t t, int h) {
        return vpool_.page(vpages_[size_t(t / kVPageTokens)]) +
               (size_t(t % kVPageTokens) * size_t(hk_) + size_t(h)) * vrow_;
    }

    // FP16 residual charged to the budget: R key rows and R+1 value rows at least.
    Status charge_fp(int64_t k_rows, int64_t v_rows) {
        const size_t want = size_t(std::max<int64_t>(kResidual, k_rows) + std::max<int64_t>(kResidual + 1, v_rows)) *
                            row_ * sizeof(uint16_t);
        if (want > fp_charged_) STRATA_TRY(budget_.take(want - fp_charged_));
        else budget_.give(fp_charged_ - want);
        fp_charged_ = want;
        return ok_status();
    }

    // The quantization KIVI does after a step: keys, floor(kf/R)·R oldest FP keys (in
    // groups of G); values, all but the newest R.
    Status flush_pending() {
        const int64_t kq = kf() / kResidual * kResidual, vq = std::max<int64_t>(0, vf() - kResidual);
        std::vector<float> x(size_t(kGroup) * row_);
        for (int64_t g0 = 0; g0 < kq; g0 += kGroup) {
            auto id = kpool_.alloc();
            if (!id) {
                fp_k_.erase(fp_k_.begin(), fp_k_.begin() + int64_t(size_t(g0) * row_));
                return id.error();
            }
            uint8_t* page = kpool_.page(*id);
            for (size_t i = 0; i < x.size(); ++i) x[i] = fp16_to_fp32(fp_k_[size_t(g0) * row_ + i]);
            for (int h = 0; h < hk_; ++h) {
                uint8_t* rec = page + size_t(h) * krec_;
                auto* sc = reinterpret_cast<uint16_t*>(rec + kcodes_);
                for (int c = 0; c < D_; ++c)
                    quant_group(&x[size_t(h * D_ + c)], row_, bits_, rec + size_t(c) * kcodes_ / size_t(D_), sc[c],
                                sc[D_ + c]);
            }
            kpages_.push_back(*id);
            nqk_ += kGroup;
        }
        fp_k_.erase(fp_k_.begin(), fp_k_.begin() + int64_t(size_t(kq) * row_));
        std::vector<float> y(static_cast<size_t>(D_));
        for (int64_t t = 0; t < vq; ++t, ++nqv_) {
            if (nqv_ % kVPageTokens == 0 && size_t(nqv_ / kVPageTokens) == vpages_.size()) {
                auto id = vpool_.alloc();
                if (!id) {
                    fp_v_.erase(fp_v_.begin(), fp_v_.begin() + int64_t(size_t(t) * row_));
                    return id.error();
                }
                vpages_.push_back(*id);
            }
            for (int h = 0; h < hk_; ++h) {
                const uint16_t* src = &fp_v_[size_t(t) * row_ + size_t(h * D_)];
                for (int c = 0; c < D_; ++c) y[size_t(c)] = fp16_to_fp32(src[c]);
                uint8_t* row = vrow_mut(nqv_, h);
                auto* sc = reinterpret_cast<uint16_t*>(row + vcodes_);
                for (int b = 0; b < D_ / kGroup; ++b)
                    quant_group(&y[size_t(b * kGroup)], 1, bits_, row + size_t(b * kGroup * bits_ / 8), sc[b],
                                sc[D_ / kGroup + b]);
            }
        }
        fp_v_.erase(fp_v_.begin(), fp_v_.begin() + int64_t(size_t(vq) * row_));
        return ok_status();
    }

    // Group gi of every KV head -> out [32][n_head_kv][D].
    void decode_kgroup(size_t gi, float* out) const {
        float cf[kGroup];
        for (int h = 0; h < hk_; ++h) {
            const uint8_t* rec = krec(gi, h);
            const auto* sc = reinterpret_cast<const uint16_t*>(rec + kcodes_);
            for (int c = 0; c < D_; ++c) {
                unpack32(rec + size_t(c) * kcodes_ / size_t(D_), bits_, cf);
                const float s = half(sc, c), m = half(sc, D_ + c);
                for (int t = 0; t < kGroup; ++t) out[size_t(t) * row_ + size_t(h * D_ + c)] = s * cf[t] + m;
            }
        }
    }
    void decode_vrow(const uint8_t* row, float* out) const {
        const auto* sc = reinterpret_cast<const uint16_t*>(row + vcodes_);
        for (int b = 0; b < D_ / kGroup; ++b) {
            unpack32(row + size_t(b * kGroup * bits_ / 8), bits_, out + b * kGroup);
            const float s = half(sc, b), m = half(sc, D_ / kGroup + b);
            for (int i = 0; i < kGroup; ++i) out[b * kGroup + i] = s * out[b * kGroup + i] + m;
        }
    }

    CacheShape s_;
    int bits_, D_, hk_;
    size_t row_, kcodes_, krec_, vcodes_, vrow_;
    ByteBudget& budget_;
    mutable PagePool kpool_, vpool_;
    std::vector<uint32_t> kpages_, vpages_;  // page tables, token order
    int64_t nqk_ = 0, nqv_ = 0;              // quantized keys / values (the oldest tokens)
    std::vector<uint16_t> fp_k_, fp_v_;      // FP16 residual [tokens][n_head_kv][D]
    size_t fp_charged_ = 0;
};

void KiviFifoCache::attend(const float* q, int64_t n, float* out, const AttendOpts& o) const {
    const int D = D_, hk = hk_, g = s_.n_head / hk;
    TileLayout fpl;  // the FP16 row kernels need D % 64 == 0 for SIMD, else scalar
    fpl.D = D, fpl.G = 64;
    const TileKernels& kern = tile_kernels_for(fpl);
    const float scale = score_scale(o, D);
    const int64_t n_tok = n_tokens();
    auto job = [&](int64_t b, int64_t e) {
        std::vector<float> qs(size_t(g) * size_t(D)), a(qs.size()), acc(qs.size()), sc, gs(size_t(g) * kGroup);
        std::vector<double> sum(static_cast<size_t>(g));
        float cf[kGroup], beta[64];
        for (int64_t jb = b; jb < e; ++jb) {
            const int64_t i = jb / hk;
            const int h = int(jb % hk);
            const KeySpan span = visible_keys(o, n_tok, n, i);
            const int64_t n_vis = span.end;
            const size_t ld = size_t(n_vis);
            sc.assign(size_t(g) * ld, 0.f);
            for (int j = 0; j < g; ++j)
                for (int d = 0; d < D; ++d) qs[size_t(j * D + d)] = q[(i * s_.n_head + h * g + j) * D + d] * scale;
            // Quantized keys, one 32-token group at a time: scores = beta + sum_c a[c]·code[c][t].
            const int64_t nk = std::min(nqk_, n_vis);
            for (int64_t g0 = 0; g0 < nk; g0 += kGroup) {
                const uint8_t* rec = krec(size_t(g0 / kGroup), h);
                const auto* s16 = reinterpret_cast<const uint16_t*>(rec + kcodes_);
                for (int j = 0; j < g; ++j) beta[j] = 0.f;
                for (int c = 0; c < D; ++c) {
                    const float s = half(s16, c), m = half(s16, D + c);
                    for (int j = 0; j < g; ++j) a[size_t(j * D + c)] = qs[size_t(j * D + c)] * s, beta[j] += qs[size_t(j * D + c)] * m;
                }
                for (int j = 0; j < g; ++j) std::fill(&gs[size_t(j * kGroup)], &gs[size_t(j * kGroup)] + kGroup, beta[j]);
                for (int c = 0; c < D; ++c) {
                    unpack32(rec + size_t(c) * kcodes_ / size_t(D), bits_, cf);
                    for (int j = 0; j < g; ++j) {
                        const float aj = a[size_t(j * D + c)];
                        float* o = &gs[size_t(j * kGroup)];
                        for (int t = 0; t < kGroup; ++t) o[t] += aj * cf[t];
                    }
                }
                const int cnt = int(std::min<int64_t>(kGroup, nk - g0));
                for (int j = 0; j < g; ++j) std::copy_n(&gs[size_t(j * kGroup)], cnt, &sc[size_t(j) * ld + size_t(g0)]);
            }
            // FP16 residual keys follow the quantized ones.
            const int64_t nkf = std::max<int64_t>(0, n_vis - nqk_);
            if (nkf) kern.fp_scores(fp_k_.data() + h * D, row_, int(nkf), D, qs.data(), g, &sc[size_t(nqk_)], ld);
            for (int j = 0; j < g; ++j) {
                float* sj = &sc[size_t(j) * ld];
                std::fill(sj, sj + span.first, -INFINITY);  // before a sliding window
                sum[size_t(j)] = kern.exp_sum(sj, int(n_vis), kern.max(sj, int(n_vis)));
            }
            // Values: quantized rows with each group's scale and minimum folded into the weight.
            std::fill(acc.begin(), acc.end(), 0.f);
            const int64_t nv = std::min(nqv_, n_vis);
            for (int64_t t = 0; t < nv; ++t) {
                const uint8_t* row = vrow(t, h);
                const auto* s16 = reinterpret_cast<const uint16_t*>(row + vcodes_);
                for (int blk = 0; blk < D / kGroup; ++blk) {
                    unpack32(row + size_t(blk * kGroup * bits_ / 8), bits_, cf);
                    const float s = half(s16, blk), m = half(s16, D / kGroup + blk);
                    for (int j = 0; j < g; ++j) {
                        const float w = sc[size_t(j) * ld + size_t(t)];
                        const float ws = w * s, wm = w * m;
                        float* oj = &acc[size_t(j * D + blk * kGroup)];
                        for (int c = 0; c < kGroup; ++c) oj[c] += ws * cf[c] + wm;
                    }
                }
            }
            const int64_t nvf = std::max<int64_t>(0, n_vis - nqv_);
            if (nvf) kern.fp_values(fp_v_.data() + h * D, row_, int(nvf), D, &sc[size_t(nqv_)], ld, g, acc.data());
            for (int j = 0; j < g; ++j) {
                const float inv = float(1.0 / sum[size_t(j)]);
                float* dst = out + (i * s_.n_head + h * g + j) * D;
                for (int d = 0; d < D; ++d) dst[d] = acc[size_t(j * D + d)] * inv;
            }
        }
    };
    if (o.pool && n * hk > 1) o.pool->parallel_for(n * hk, 1, job);
    else job(0, n * hk);
}

class KiviFifoMethod final : public Method {
public:
    explicit KiviFifoMethod(int bits) : bits_(bits) {}
    std::string_view name() const override { return bits_ == 2 ? "kivi2_g32_r128" : "kivi4_g32_r128"; }
    std::string_view summary() const override {
        return bits_ == 2 ? "KIVI-2 as in its paper: K per channel / V per token in groups of 32, FP16 residual of 128 "
                            "(K flushed every 128, V FIFO)"
                          : "KIVI-4 as in its paper: K per channel / V per token in groups of 32, FP16 residual of 128 "
                            "(K flushed every 128, V FIFO)";
    }
    Status check(const CacheShape& s) const override {
        STRATA_TRY(check_block32(name(), s));
        if (s.n_head / s.n_head_kv > 64)
            return unsupported("kv {}: query group of {} heads per KV head is above the 64 supported", name(),
                               s.n_head / s.n_head_kv);
        return ok_status();
    }
    Result<std::unique_ptr<LayerCache>> make_layer(const CacheShape& s, int, ByteBudget& budget) const override {
        auto c = std::make_unique<KiviFifoCache>(s, budget, bits_);
        STRATA_TRY(c->init());
        return std::unique_ptr<LayerCache>(std::move(c));
    }

private:
    int bits_;
};

}  // namespace

std::unique_ptr<Method> make_kivi_fifo_method(int bits) { return std::make_unique<KiviFifoMethod>(bits); }

}  // namespace strata::kv

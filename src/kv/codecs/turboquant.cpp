// TurboQuant as vLLM's community implementation defines it (the variant the KVarN paper
// benchmarked; spec §4.4, "vLLM-style"): per token and KV head,
//  - keys: x = n·u with n = |x|; y = H u (normalized Hadamard); every coordinate of y is
//    replaced by the nearest of 2^b Lloyd–Max centroids for the exact coordinate law of a
//    uniformly random unit vector in R^D (density ∝ (1-y^2)^((D-3)/2)); "nc" norm
//    correction: the stored FP16 scale is n / |centroid vector|, so the decoded key has the
//    true norm. Bytes: D·b/8 codes + 2.
//  - values: plain asymmetric b-bit min/max RTN over the vector, FP16 step and minimum, no
//    rotation (spec leaves V rotation unverified; we do not rotate). Bytes: D·b/8 + 4.
//  - no QJL stage. turboquantB quantizes every layer; turboquantB_b2 keeps the first and
//    last two layers in fp16 as vLLM does.
// Fused kernels: the query is rotated once per step (prepare_query), a key score is
// scale·sum q~[c]·centroid[code c]; values fold step and minimum into the softmax weight.
// The paper's own TQ_mse / TQ_prod algorithms are tq_paper.h (tq_mse3, tq_prod3).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kv/codecs/codecs.h"
#include "kv/lane_dot.h"
#include "kv/hadamard.h"
#include "kv/row_cache.h"
#include "kv/varn.h"
#include "tensor/dtype.h"

namespace strata::kv {

// Lloyd–Max centroids (ascending) for one coordinate of a random unit vector in R^D,
// solved on a fine grid starting from the Gaussian levels / sqrt(D).
std::vector<float> turboquant_codebook(int D, int bits) {
    static const double gauss[5][8] = {{}, {0.7979}, {0.4528, 1.5104},
                                       {0.2451, 0.7560, 1.3440, 2.1520},
                                       {0.1284, 0.3881, 0.6568, 0.9424, 1.2562, 1.6181, 2.0690, 2.7326}};
    const int K = 1 << bits, half = K / 2;
    std::vector<double> c(static_cast<size_t>(K));
    for (int i = 0; i < half; ++i) {
        c[size_t(half + i)] = gauss[bits][i] / std::sqrt(double(D));
        c[size_t(half - 1 - i)] = -c[size_t(half + i)];
    }
    const int N = 20001;
    std::vector<double> y(N), f(N);
    for (int i = 0; i < N; ++i) {
        y[size_t(i)] = -1.0 + 2.0 * i / (N - 1);
        f[size_t(i)] = std::pow(std::max(0.0, 1.0 - y[size_t(i)] * y[size_t(i)]), 0.5 * (D - 3));
    }
    for (int it = 0; it < 300; ++it) {
        std::vector<double> num(size_t(K), 0.0), den(size_t(K), 0.0);
        int k = 0;
        for (int i = 0; i < N; ++i) {
            while (k + 1 < K && y[size_t(i)] > 0.5 * (c[size_t(k)] + c[size_t(k + 1)])) ++k;
            num[size_t(k)] += y[size_t(i)] * f[size_t(i)];
            den[size_t(k)] += f[size_t(i)];
        }
        for (int j = 0; j < K; ++j)
            if (den[size_t(j)] > 0) c[size_t(j)] = num[size_t(j)] / den[size_t(j)];
    }
    return std::vector<float>(c.begin(), c.end());
}

namespace {

class TqKeyCodec final : public RowCodecT<TqKeyCodec> {
public:
    TqKeyCodec(int D, int bits) : RowCodecT(D), bits_(bits), cb_(turboquant_codebook(D, bits)) {}
    std::string_view name() const override { return "turboquant-k"; }
    size_t row_bytes() const override { return packed_bytes(head_dim_, bits_) + 2; }
    void encode(const float* x, uint8_t* dst) const override {
        const int D = head_dim_;
        std::vector<float> y(x, x + D);
        std::vector<uint8_t> idx(static_cast<size_t>(D));
        double n2 = 0;
        for (float v : y) n2 += double(v) * v;
        const float n = float(std::sqrt(n2));
        fwht(y.data(), D);
        double c2 = 0;
        for (int d = 0; d < D; ++d) {
            const float u = n > 0 ? y[size_t(d)] / n : 0.f;
            // Centroids ascend, so the nearest is found from the midpoints.
            int k = 0;
            while (k + 1 < int(cb_.size()) && u > 0.5f * (cb_[size_t(k)] + cb_[size_t(k + 1)])) ++k;
            idx[size_t(d)] = uint8_t(k);
            c2 += double(cb_[size_t(k)]) * cb_[size_t(k)];
        }
        pack_codes(idx.data(), D, bits_, dst);
        const float s = c2 > 0 ? float(double(n) / std::sqrt(c2)) : 0.f;
        reinterpret_cast<uint16_t*>(dst + packed_bytes(D, bits_))[0] = fp32_to_fp16(s);
    }
    void decode(const uint8_t* src, float* x) const override {
        std::vector<uint8_t> idx(static_cast<size_t>(head_dim_));
        unpack_codes(src, head_dim_, bits_, idx.data());
        const float s = scale(src);
        for (int d = 0; d < head_dim_; ++d) x[d] = s * cb_[idx[size_t(d)]];
        fwht(x, head_dim_);
    }
    void prepare_query(const float* q, float* qp) const override {
        std::copy(q, q + head_dim_, qp);
        fwht(qp, head_dim_);
    }
    float dot1(const float* qp, const uint8_t* row) const {
        uint8_t idx[256];
        unpack_codes(row, head_dim_, bits_, idx);
        const float* cb = cb_.data();
        return scale(row) * lane_dot(qp, head_dim_, [cb, &idx](int64_t d) { return cb[idx[d]]; });
    }
    void axpy1(float, const uint8_t*, float*) const {}  // keys are never accumulated

private:
    float scale(const uint8_t* row) const {
        return fp16_to_fp32(reinterpret_cast<const uint16_t*>(row + packed_bytes(head_dim_, bits_))[0]);
    }
    int bits_;
    std::vector<float> cb_;
};

class TqValueCodec final : public RowCodecT<TqValueCodec> {
public:
    TqValueCodec(int D, int bits) : RowCodecT(D), bits_(bits) {}
    std::string_view name() const override { return "turboquant-v"; }
    size_t row_bytes() const override { return packed_bytes(head_dim_, bits_) + 4; }
    void encode(const float* x, uint8_t* dst) const override {
        uint8_t codes[256];
        const RtnRow r = rtn_row(x, head_dim_, bits_, codes);
        pack_codes(codes, head_dim_, bits_, dst);
        auto* h = reinterpret_cast<uint16_t*>(dst + packed_bytes(head_dim_, bits_));
        h[0] = fp32_to_fp16(r.d), h[1] = fp32_to_fp16(r.lo);
    }
    void decode(const uint8_t* src, float* x) const override {
        uint8_t codes[256];
        unpack_codes(src, head_dim_, bits_, codes);
        auto* h = reinterpret_cast<const uint16_t*>(src + packed_bytes(head_dim_, bits_));
        const float d = fp16_to_fp32(h[0]), lo = fp16_to_fp32(h[1]);
        for (int c = 0; c < head_dim_; ++c) x[c] = d * float(codes[c]) + lo;
    }
    float dot1(const float*, const uint8_t*) const { return 0.f; }  // values are never scored
    void axpy1(float w, const uint8_t* row, float* acc) const {
        uint8_t codes[256];
        unpack_codes(row, head_dim_, bits_, codes);
        auto* h = reinterpret_cast<const uint16_t*>(row + packed_bytes(head_dim_, bits_));
        const float wd = w * fp16_to_fp32(h[0]), wl = w * fp16_to_fp32(h[1]);
        for (int c = 0; c < head_dim_; ++c) acc[c] += wd * float(codes[c]) + wl;
    }

private:
    int bits_;
};

class TurboQuantMethod final : public Method {
public:
    TurboQuantMethod(int bits, bool boundary) : bits_(bits), boundary_(boundary) {}
    std::string_view name() const override {
        static const char* n[2][5] = {{"", "", "", "turboquant3", "turboquant4"},
                                      {"", "", "", "turboquant3_b2", "turboquant4_b2"}};
        return n[boundary_][bits_];
    }
    std::string_view summary() const override {
        return boundary_ ? "TurboQuant, vLLM-style, first/last 2 layers fp16 (spec §4.4)"
                         : "TurboQuant, vLLM-style: Hadamard + Lloyd-Max K with norm correction, uniform V";
    }
    Status check(const CacheShape& s) const override { return check_pow2(name(), s); }
    Result<std::unique_ptr<LayerCache>> make_layer(const CacheShape& s, int layer, ByteBudget& budget) const override {
        if (boundary_ && (layer < 2 || layer >= s.n_layer - 2)) return make_fp16_method()->make_layer(s, layer, budget);
        return make_row_cache(s, budget, std::make_shared<TqKeyCodec>(s.head_dim, bits_),
                              std::make_shared<TqValueCodec>(s.head_dim, bits_));
    }

private:
    int bits_;
    bool boundary_;
};

}  // namespace

std::unique_ptr<Method> make_turboquant_method(int bits, bool boundary) {
    return std::make_unique<TurboQuantMethod>(bits, boundary);
}

}  // namespace strata::kv

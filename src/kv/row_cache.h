// Per-token formats: every cached K or V head vector (one token, one KV head, head_dim
// values) is encoded on its own the moment it is written (llama.cpp's quantized K cache,
// TurboQuant). RowCodec is the plug-in: encode/decode one row, and the fused kernels that
// work on encoded rows (dot with a prepared query, weighted accumulate into an output).
// RowCodecT<Impl> turns an Impl's inline one-row kernels into the page-at-a-time virtual
// calls, so dispatch is paid per page, never per value.
// make_row_cache builds the LayerCache: pages of kRowPageTokens tokens, page layout
// K rows [tokens][n_head_kv][k_row_bytes] then V rows [tokens][n_head_kv][v_row_bytes].
#pragma once

#include <memory>
#include <string_view>

#include "kv/kv_cache.h"

namespace strata::kv {

inline constexpr int kRowPageTokens = 64;

class RowCodec {
public:
    explicit RowCodec(int head_dim) : head_dim_(head_dim) {}
    virtual ~RowCodec() = default;
    int head_dim() const { return head_dim_; }
    virtual std::string_view name() const = 0;
    virtual size_t row_bytes() const = 0;
    virtual void encode(const float* x, uint8_t* dst) const = 0;
    virtual void decode(const uint8_t* src, float* x) const = 0;
    // Once per query head and step, for K codecs that store rows in another frame (a
    // rotation): qp = that frame's query. Default copies.
    virtual void prepare_query(const float* q, float* qp) const;
    // Once per query head and step, for V codecs: maps the accumulated output back to the
    // model frame. Default: nothing.
    virtual void finish_output(float* acc) const {}
    // out[t] = qp . decode(row t), rows at rows + t*stride.
    virtual void dot_rows(const float* qp, const uint8_t* rows, size_t stride, int n, float* out) const = 0;
    // acc += sum_t w[t] * decode(row t).
    virtual void axpy_rows(const float* w, const uint8_t* rows, size_t stride, int n, float* acc) const = 0;

protected:
    int head_dim_;
};

// The per-token formats' fused kernels are plain C++ (lane_dot.h); GCC builds them once
// per ISA level and picks one at load time (ifunc), so they vectorize with AVX2/AVX-512
// where present and still run on any x86-64. Off under sanitizers and other compilers.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define STRATA_ROW_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define STRATA_ROW_KERNEL
#endif

// Impl provides: name(), row_bytes(), encode, decode, and
//   float dot1(const float* qp, const uint8_t* row) const;
//   void axpy1(float w, const uint8_t* row, float* acc) const;
namespace detail {
template <class Impl>
STRATA_ROW_KERNEL void row_dots(const Impl& self, const float* qp, const uint8_t* rows, size_t stride, int n,
                                float* out) {
    for (int t = 0; t < n; ++t) out[t] = self.dot1(qp, rows + size_t(t) * stride);
}
template <class Impl>
STRATA_ROW_KERNEL void row_axpys(const Impl& self, const float* w, const uint8_t* rows, size_t stride, int n,
                                 float* acc) {
    for (int t = 0; t < n; ++t)
        if (w[t] != 0.f) self.axpy1(w[t], rows + size_t(t) * stride, acc);
}
}  // namespace detail

template <class Impl>
class RowCodecT : public RowCodec {
public:
    using RowCodec::RowCodec;
    void dot_rows(const float* qp, const uint8_t* rows, size_t stride, int n, float* out) const final {
        detail::row_dots(static_cast<const Impl&>(*this), qp, rows, stride, n, out);
    }
    void axpy_rows(const float* w, const uint8_t* rows, size_t stride, int n, float* acc) const final {
        detail::row_axpys(static_cast<const Impl&>(*this), w, rows, stride, n, acc);
    }
};

Result<std::unique_ptr<LayerCache>> make_row_cache(const CacheShape& s, ByteBudget& budget,
                                                   std::shared_ptr<const RowCodec> k,
                                                   std::shared_ptr<const RowCodec> v);

// A Method over one RowCodec for both K and V; `factory` builds the codec for a head size
// and `check` validates the shape first.
class RowMethod : public Method {
public:
    Result<std::unique_ptr<LayerCache>> make_layer(const CacheShape& s, int layer, ByteBudget& budget) const override {
        std::shared_ptr<const RowCodec> c = row_codec(s.head_dim);
        return make_row_cache(s, budget, c, c);
    }
};

}  // namespace strata::kv

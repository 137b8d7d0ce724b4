// fp32: the plain f32 cache, the accuracy reference for every other format (spec §4.1).
// Rows are stored as-is; the fused kernels are ordinary dot products and axpys.
#include <cstring>

#include "kv/codecs/codecs.h"
#include "kv/lane_dot.h"
#include "kv/row_cache.h"

namespace strata::kv {
namespace {

class Fp32Codec final : public RowCodecT<Fp32Codec> {
public:
    using RowCodecT::RowCodecT;
    std::string_view name() const override { return "fp32"; }
    size_t row_bytes() const override { return size_t(head_dim_) * 4; }
    void encode(const float* x, uint8_t* dst) const override { std::memcpy(dst, x, row_bytes()); }
    void decode(const uint8_t* src, float* x) const override { std::memcpy(x, src, row_bytes()); }
    float dot1(const float* qp, const uint8_t* row) const {
        return dot8(qp, reinterpret_cast<const float*>(row), head_dim_);
    }
    void axpy1(float w, const uint8_t* row, float* acc) const {
        const auto* v = reinterpret_cast<const float*>(row);
        for (int d = 0; d < head_dim_; ++d) acc[d] += w * v[d];
    }
};

class Fp32Method final : public RowMethod {
public:
    std::string_view name() const override { return "fp32"; }
    std::string_view summary() const override { return "f32 rows (accuracy reference), 32 bits/value"; }
    Status check(const CacheShape& s) const override { return check_gqa(name(), s); }
    std::unique_ptr<RowCodec> row_codec(int head_dim) const override { return std::make_unique<Fp32Codec>(head_dim); }
};

}  // namespace

std::unique_ptr<Method> make_fp32_method() { return std::make_unique<Fp32Method>(); }

}  // namespace strata::kv

// q8_0: llama.cpp's 8-bit block format applied per token (spec §4.2): each head vector is
// cut into blocks of 32 channels, each block stores an f16 scale d = amax/127 and 32 int8
// codes (ggml's quantize_row_q8_0_ref, tensor/dtype.cpp). Fused kernels fold d into the
// block's partial dot (scores) and into the softmax weight (values).
#include "kv/codecs/codecs.h"
#include "kv/lane_dot.h"
#include "kv/row_cache.h"
#include "tensor/dtype.h"

namespace strata::kv {
namespace {

class Q8_0Codec final : public RowCodecT<Q8_0Codec> {
public:
    using RowCodecT::RowCodecT;
    std::string_view name() const override { return "q8_0"; }
    size_t row_bytes() const override { return size_t(head_dim_ / 32) * sizeof(BlockQ8_0); }
    void encode(const float* x, uint8_t* dst) const override { quantize_row_q8_0(x, dst, head_dim_); }
    void decode(const uint8_t* src, float* x) const override { dequantize_row(DType::Q8_0, src, x, head_dim_); }
    float dot1(const float* qp, const uint8_t* row) const {
        const auto* b = reinterpret_cast<const BlockQ8_0*>(row);
        float s = 0;
        for (int i = 0; i < head_dim_ / 32; ++i, qp += 32) {
            const int8_t* c = b[i].qs;
            s += fp16_to_fp32(b[i].d) * lane_dot(qp, 32, [c](int64_t j) { return float(c[j]); });
        }
        return s;
    }
    void axpy1(float w, const uint8_t* row, float* acc) const {
        const auto* b = reinterpret_cast<const BlockQ8_0*>(row);
        for (int i = 0; i < head_dim_ / 32; ++i, acc += 32) {
            const float wd = w * fp16_to_fp32(b[i].d);
            for (int j = 0; j < 32; ++j) acc[j] += wd * float(b[i].qs[j]);
        }
    }
};

class Q8_0Method final : public RowMethod {
public:
    std::string_view name() const override { return "q8_0"; }
    std::string_view summary() const override { return "llama.cpp q8_0 blocks per token, 8.5 bits/value"; }
    Status check(const CacheShape& s) const override { return check_block32(name(), s); }
    std::unique_ptr<RowCodec> row_codec(int head_dim) const override { return std::make_unique<Q8_0Codec>(head_dim); }
};

}  // namespace

std::unique_ptr<Method> make_q8_0_method() { return std::make_unique<Q8_0Method>(); }

}  // namespace strata::kv

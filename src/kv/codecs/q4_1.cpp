// q4_1: llama.cpp's 4-bit asymmetric block format per token (spec §4.2): per 32 channels
// f16 d = (max-min)/15 and f16 m = min, nibbles q with x = q·d + m (same nibble order as
// q4_0). Encoder: ggml's quantize_row_q4_1_ref (tensor/dtype.cpp). Fused: d·(sum q·c) +
// m·(sum q) per block.
#include "kv/codecs/codecs.h"
#include "kv/lane_dot.h"
#include "kv/row_cache.h"
#include "tensor/dtype.h"

namespace strata::kv {
namespace {

class Q4_1Codec final : public RowCodecT<Q4_1Codec> {
public:
    using RowCodecT::RowCodecT;
    std::string_view name() const override { return "q4_1"; }
    size_t row_bytes() const override { return size_t(head_dim_ / 32) * sizeof(BlockQ4_1); }
    void encode(const float* x, uint8_t* dst) const override { quantize_row_q4_1(x, dst, head_dim_); }
    void decode(const uint8_t* src, float* x) const override { dequantize_row(DType::Q4_1, src, x, head_dim_); }
    float dot1(const float* qp, const uint8_t* row) const {
        const auto* b = reinterpret_cast<const BlockQ4_1*>(row);
        float s = 0;
        for (int i = 0; i < head_dim_ / 32; ++i, qp += 32) {
            const uint8_t* c = b[i].qs;
            const float p = lane_dot(qp, 16, [c](int64_t j) { return float(c[j] & 15); }) +
                            lane_dot(qp + 16, 16, [c](int64_t j) { return float(c[j] >> 4); });
            const float qsum = lane_dot(qp, 32, [](int64_t) { return 1.f; });
            s += fp16_to_fp32(b[i].d) * p + fp16_to_fp32(b[i].m) * qsum;
        }
        return s;
    }
    void axpy1(float w, const uint8_t* row, float* acc) const {
        const auto* b = reinterpret_cast<const BlockQ4_1*>(row);
        for (int i = 0; i < head_dim_ / 32; ++i, acc += 32) {
            const float wd = w * fp16_to_fp32(b[i].d), wm = w * fp16_to_fp32(b[i].m);
            for (int j = 0; j < 16; ++j) {
                acc[j] += wd * float(b[i].qs[j] & 15) + wm;
                acc[j + 16] += wd * float(b[i].qs[j] >> 4) + wm;
            }
        }
    }
};

class Q4_1Method final : public RowMethod {
public:
    std::string_view name() const override { return "q4_1"; }
    std::string_view summary() const override { return "llama.cpp q4_1 blocks per token, 5 bits/value"; }
    Status check(const CacheShape& s) const override { return check_block32(name(), s); }
    std::unique_ptr<RowCodec> row_codec(int head_dim) const override { return std::make_unique<Q4_1Codec>(head_dim); }
};

}  // namespace

std::unique_ptr<Method> make_q4_1_method() { return std::make_unique<Q4_1Method>(); }

}  // namespace strata::kv

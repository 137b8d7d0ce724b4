// q4_0: llama.cpp's 4-bit symmetric block format per token (spec §4.2): per 32 channels an
// f16 d = m/-8 (m = the signed value of largest magnitude) and nibbles q with
// x = (q - 8)·d; byte j holds element j (low nibble) and j+16 (high). Encoder: ggml's
// quantize_row_q4_0_ref (tensor/dtype.cpp). Fused: d·sum q·(c - 8) per block.
#include "kv/codecs/codecs.h"
#include "kv/lane_dot.h"
#include "kv/row_cache.h"
#include "tensor/dtype.h"

namespace strata::kv {
namespace {

class Q4_0Codec final : public RowCodecT<Q4_0Codec> {
public:
    using RowCodecT::RowCodecT;
    std::string_view name() const override { return "q4_0"; }
    size_t row_bytes() const override { return size_t(head_dim_ / 32) * sizeof(BlockQ4_0); }
    void encode(const float* x, uint8_t* dst) const override { quantize_row_q4_0(x, dst, head_dim_); }
    void decode(const uint8_t* src, float* x) const override { dequantize_row(DType::Q4_0, src, x, head_dim_); }
    float dot1(const float* qp, const uint8_t* row) const {
        const auto* b = reinterpret_cast<const BlockQ4_0*>(row);
        float s = 0;
        for (int i = 0; i < head_dim_ / 32; ++i, qp += 32) {
            const uint8_t* c = b[i].qs;
            const float p = lane_dot(qp, 16, [c](int64_t j) { return float(int(c[j] & 15) - 8); }) +
                            lane_dot(qp + 16, 16, [c](int64_t j) { return float(int(c[j] >> 4) - 8); });
            s += fp16_to_fp32(b[i].d) * p;
        }
        return s;
    }
    void axpy1(float w, const uint8_t* row, float* acc) const {
        const auto* b = reinterpret_cast<const BlockQ4_0*>(row);
        for (int i = 0; i < head_dim_ / 32; ++i, acc += 32) {
            const float wd = w * fp16_to_fp32(b[i].d);
            for (int j = 0; j < 16; ++j) {
                acc[j] += wd * float(int(b[i].qs[j] & 15) - 8);
                acc[j + 16] += wd * float(int(b[i].qs[j] >> 4) - 8);
            }
        }
    }
};

class Q4_0Method final : public RowMethod {
public:
    std::string_view name() const override { return "q4_0"; }
    std::string_view summary() const override { return "llama.cpp q4_0 blocks per token, 4.5 bits/value"; }
    Status check(const CacheShape& s) const override { return check_block32(name(), s); }
    std::unique_ptr<RowCodec> row_codec(int head_dim) const override { return std::make_unique<Q4_0Codec>(head_dim); }
};

}  // namespace

std::unique_ptr<Method> make_q4_0_method() { return std::make_unique<Q4_0Method>(); }

}  // namespace strata::kv

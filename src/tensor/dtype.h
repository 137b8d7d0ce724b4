// ggml tensor types as stored in GGUF: ids, block geometry, fp16/bf16 conversion and
// reference (scalar) dequantization of whole rows. Block layouts follow
// shared/specs/gguf-and-llama.md §2; SIMD kernels live in tensor/cpu/ and are checked
// against the scalar code here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace strata {

enum class DType : uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ4_NL = 20, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
};

struct DTypeInfo {
    std::string_view name;
    uint32_t block_size;   // values per block
    uint32_t block_bytes;  // bytes per block
    bool can_dequantize;   // we implement dequantize_row for it
};

// nullopt for unknown or retired ids.
std::optional<DTypeInfo> dtype_info(uint32_t id);
inline DTypeInfo dtype_info_checked(DType t) { return *dtype_info(uint32_t(t)); }
std::string_view dtype_name(DType t);

// Bytes for n values (n must be a multiple of the block size; callers check).
inline size_t dtype_row_bytes(DType t, uint64_t n) {
    auto i = dtype_info_checked(t);
    return size_t(n / i.block_size) * i.block_bytes;
}

// IEEE half <-> float, exact (subnormals, inf, NaN).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);  // round to nearest even
inline float bf16_to_fp32(uint16_t h) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
uint16_t fp32_to_bf16(float f);

// Reference dequantization of n values (n a multiple of the block size) from src to dst.
// Returns false when the type is not supported.
bool dequantize_row(DType t, const void* src, float* dst, int64_t n);

// Reference quantizers (ggml's formulas), n a multiple of 32. Used for the KV cache and
// for 8-bit activations.
void quantize_row_q8_0(const float* x, void* dst, int64_t n);
void quantize_row_q8_1(const float* x, void* dst, int64_t n);
void quantize_row_q4_0(const float* x, void* dst, int64_t n);
void quantize_row_q4_1(const float* x, void* dst, int64_t n);

// Block structs (packed; all are multiples of 2 bytes and have no padding).
#pragma pack(push, 1)
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[16]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };
struct BlockQ8_1 { uint16_t d, s; int8_t qs[32]; };
struct BlockIQ4_NL { uint16_t d; uint8_t qs[16]; };
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; };
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
struct BlockQ6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };
struct BlockQ8_K { float d; int8_t qs[256]; int16_t bsums[16]; };
#pragma pack(pop)
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

}  // namespace strata

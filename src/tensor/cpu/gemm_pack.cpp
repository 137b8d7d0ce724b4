// Data re-layout for the batched (prefill) kernels, shared by every ISA level and
// compiled for baseline x86-64: weight tiles unpacked to one byte per value with f32
// scales, and Q8 activations regrouped in token pairs (layouts described in simd.h and
// kernels.h). Both are plain byte shuffles and f16->f32 conversions, so the integer dots
// and scale products the kernels compute from them are exactly the vec-dots' values.
#include <cstring>

#include "tensor/cpu/simd.h"

namespace strata::cpu {

namespace {

// The 32 high bits of a Q5 block, bit j for value j.
inline uint32_t q5_high(const uint8_t* qh) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return h;
}

// Values j and j+16 of a 4-bit block sit in the low and high nibble of qs[j].
inline void unpack_nibbles(const uint8_t* qs, uint8_t* out) {
    for (int j = 0; j < 16; ++j) {
        out[j] = qs[j] & 0xF;
        out[j + 16] = qs[j] >> 4;
    }
}

inline void add_high_bits(uint32_t h, uint8_t* out) {
    for (int j = 0; j < 32; ++j) out[j] = uint8_t(out[j] | (((h >> j) & 1) << 4));
}

}  // namespace

bool gemm_packable(DType wt) {
    switch (wt) {
        case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: return true;
        default: return false;
    }
}

void set_tile_format(DType wt, bool offset_q8, int64_t nb, PackedTile* t) {
    t->nb = nb;
    t->has_min = wt == DType::Q4_1 || wt == DType::Q5_1;
    t->signed_codes = wt == DType::Q8_0 && !offset_q8;
    t->offset = wt == DType::Q4_0 ? 8 : wt == DType::Q5_0 ? 16 : (wt == DType::Q8_0 && offset_q8) ? 128 : 0;
}

void pack_weight_tile(DType wt, bool offset_q8, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
                      int64_t nb, PackedTile* t) {
    if (active_isa() >= Isa::kAvx2) return avx2_pack_weight_tile(wt, offset_q8, w, w_row_bytes, n_rows, nb, t);
    pack_weight_tile_scalar(wt, offset_q8, w, w_row_bytes, n_rows, nb, t);
}

void pack_weight_tile_scalar(DType wt, bool offset_q8, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
                             int64_t nb, PackedTile* t) {
    set_tile_format(wt, offset_q8, nb, t);
    for (int r = 0; r < kGemmRows; ++r) {
        const uint8_t* row = w + size_t(r) * w_row_bytes;
        for (int64_t i = 0; i < nb; ++i) {
            uint8_t* c = t->codes + (size_t(i) * kGemmRows + size_t(r)) * 32;
            float* d = t->d + i * kGemmRows + r;
            float* m = t->m + i * kGemmRows + r;
            if (r >= n_rows) {  // tail tile: zero rows give zero sums and are not stored
                std::memset(c, 0, 32);
                *d = 0, *m = 0;
                continue;
            }
            switch (wt) {
                case DType::Q4_0: {
                    auto* b = reinterpret_cast<const BlockQ4_0*>(row) + i;
                    unpack_nibbles(b->qs, c);
                    *d = fp16_to_fp32(b->d), *m = 0;
                    break;
                }
                case DType::Q4_1: {
                    auto* b = reinterpret_cast<const BlockQ4_1*>(row) + i;
                    unpack_nibbles(b->qs, c);
                    *d = fp16_to_fp32(b->d), *m = fp16_to_fp32(b->m);
                    break;
                }
                case DType::Q5_0: {
                    auto* b = reinterpret_cast<const BlockQ5_0*>(row) + i;
                    unpack_nibbles(b->qs, c);
                    add_high_bits(q5_high(b->qh), c);
                    *d = fp16_to_fp32(b->d), *m = 0;
                    break;
                }
                case DType::Q5_1: {
                    auto* b = reinterpret_cast<const BlockQ5_1*>(row) + i;
                    unpack_nibbles(b->qs, c);
                    add_high_bits(q5_high(b->qh), c);
                    *d = fp16_to_fp32(b->d), *m = fp16_to_fp32(b->m);
                    break;
                }
                case DType::Q8_0: {
                    auto* b = reinterpret_cast<const BlockQ8_0*>(row) + i;
                    std::memcpy(c, b->qs, 32);
                    if (offset_q8)
                        for (int j = 0; j < 32; ++j) c[j] ^= 0x80;  // int8 q -> uint8 q + 128
                    *d = fp16_to_fp32(b->d), *m = 0;
                    break;
                }
                default: break;
            }
        }
    }
}

void size_packed_acts(Acts* x) {
    PackedActs& p = x->packed;
    p.n_tok = x->n_rows;
    p.n_pairs = (x->n_rows + 1) / 2;
    p.nb = x->n_cols / 32;
    p.ld = (x->n_rows + 7) / 8 * 8 + 8;
    p.storage.resize(size_t(p.n_pairs * p.nb) * 64 + 64);
    p.d.assign(size_t(p.nb * p.ld), 0.f);
    if (x->type == DType::Q8_1) p.s.assign(size_t(p.nb * p.ld), 0.f);
    else p.s.clear();
    if (x->n_rows % 2) {  // the odd token's partner is all zeros
        auto* qs = const_cast<int8_t*>(p.qs());
        for (int64_t i = 0; i < p.nb; ++i) std::memset(qs + ((p.n_pairs - 1) * p.nb + i) * 64 + 32, 0, 32);
    }
}

void pack_acts(Acts* x, int64_t t0, int64_t t1) {
    PackedActs& p = x->packed;
    auto* qs = const_cast<int8_t*>(p.qs());
    const bool q81 = x->type == DType::Q8_1;
    for (int64_t t = t0; t < t1; ++t) {
        const uint8_t* row = x->row(t);
        int8_t* dst = qs + (t / 2) * p.nb * 64 + (t % 2) * 32;
        for (int64_t i = 0; i < p.nb; ++i, dst += 64) {
            if (q81) {
                auto* b = reinterpret_cast<const BlockQ8_1*>(row) + i;
                std::memcpy(dst, b->qs, 32);
                p.d[size_t(i * p.ld + t)] = fp16_to_fp32(b->d);
                p.s[size_t(i * p.ld + t)] = fp16_to_fp32(b->s);
            } else {
                auto* b = reinterpret_cast<const BlockQ8_0*>(row) + i;
                std::memcpy(dst, b->qs, 32);
                p.d[size_t(i * p.ld + t)] = fp16_to_fp32(b->d);
            }
        }
    }
}

}  // namespace strata::cpu

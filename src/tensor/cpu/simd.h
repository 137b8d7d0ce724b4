// Internal to tensor/cpu: per-ISA kernel tables and the data layouts the batched kernels
// share. Each SIMD translation unit is compiled with its own target flags and exports
// lookup functions that return nullptr for pairs it does not accelerate, so dispatch
// (dispatch.cpp) falls back to the next lower level. Nothing here is inline code that
// depends on target flags: an inline function compiled with -mavx512f in one file and
// without in another would be one symbol to the linker, and the wrong copy could run
// (for the same reason the ISA files avoid out-of-line std templates; see thread_scratch).
#pragma once

#include "tensor/cpu/kernels.h"

namespace strata::cpu {

VecDotFn scalar_vec_dot(DType wt, bool exact);
VecDotFn avx2_vec_dot(DType wt);         // vec_dot_avx2.cpp (quantized pairs only)
VecDotFn avx512_vec_dot(DType wt, bool vnni);  // vec_dot_avx512.cpp (same numerics as AVX2)

// Per-thread scratch memory, 64-byte aligned, kept between calls; `slot` tells the users in
// one call apart (kScratch*). The ISA files take buffers from here rather than through
// std::vector: a template instantiated in a file built with -mavx512f is an ordinary
// weak symbol, and the linker may keep that copy for callers running on older CPUs.
enum ScratchSlot { kScratchMatvec = 0, kScratchGemmTile = 1, kScratchF32Tile = 2, kScratchKquant = 3, kScratchSlots = 4 };
uint8_t* thread_scratch(ScratchSlot slot, size_t bytes);

// Activation quantizers with the active ISA (same results as the reference quantizers).
void quantize_row_q8_0_fast(const float* x, void* dst, int64_t n);
void quantize_row_q8_1_fast(const float* x, void* dst, int64_t n);

// ---- batch-1 matvec: y[r] = dot(W row r, x) for r in [r0, r1) -------------------------
// Several rows per pass so the activation loads are shared; every row's float arithmetic
// is the AVX2 vec-dot's (one 8-lane accumulator, fma per block, ggml's hsum, then summs),
// so results are bit-identical to avx2_vec_dot row by row (kernels_test checks this).
using MatvecFn = void (*)(int64_t n, const uint8_t* w, size_t w_row_bytes, const void* x, float* y,
                          int64_t r0, int64_t r1);
MatvecFn avx2_matvec(DType wt);                // matvec_avx2.cpp
MatvecFn avx512_matvec(DType wt, bool vnni);  // matvec_avx512.cpp

// ---- batched GEMM (prefill) -------------------------------------------------------------
// Kernels see weights a tile of kGemmRows rows at a time, unpacked into a small buffer
// (gemm_pack.cpp): 32 one-byte codes per block and row, f32 scales. This costs one pass
// over the tile and lets the micro-kernels run every block of every token through the same
// few loads, whatever the weight format.
constexpr int kGemmRows = 4;

// Weight codes and the constant the integer dot subtracts per activation byte:
// Q4_1/Q5_1 -> unsigned codes, no offset (their minimum goes through m·s);
// Q4_0 -> code 0..15 = q+8 (offset 8); Q5_0 -> q+16 (offset 16);
// Q8_0 -> raw int8 (offset 0, signed) or q+128 when `offset_q8` (offset 128), for
// vpdpbusd, which multiplies unsigned by signed bytes. Integer dots are exact either way.
struct PackedTile {
    int64_t nb = 0;         // blocks per row
    int offset = 0;         // subtract offset * sum(x) from each 4-byte group's int dot
    bool signed_codes = false;
    bool has_min = false;   // Q4_1/Q5_1: y += sum_blocks m·s
    uint8_t* codes = nullptr;  // [nb][kGemmRows][32]
    float* d = nullptr;        // [nb][kGemmRows]
    float* m = nullptr;        // [nb][kGemmRows]
};
// Unpacks rows [r0, r0 + n_rows) (n_rows <= kGemmRows; missing rows become zeros) into
// *tile, whose buffers hold `nb` blocks. False for types without a GEMM path.
// pack_weight_tile() uses the AVX2 version (gemm_avx2.cpp) where the CPU has it; both
// produce the same bytes (matmul_test checks).
bool gemm_packable(DType wt);
void set_tile_format(DType wt, bool offset_q8, int64_t nb, PackedTile* tile);
void pack_weight_tile(DType wt, bool offset_q8, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
                      int64_t nb, PackedTile* tile);
void pack_weight_tile_scalar(DType wt, bool offset_q8, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
                             int64_t nb, PackedTile* tile);
void avx2_pack_weight_tile(DType wt, bool offset_q8, const uint8_t* w, size_t w_row_bytes, int64_t n_rows,
                           int64_t nb, PackedTile* tile);

// Sizes x->packed for x->n_rows tokens (Q8_0/Q8_1 acts), then fills tokens [t0, t1) of it
// from x->buf. Threads may pack disjoint token ranges at once.
void size_packed_acts(Acts* x);
void pack_acts(Acts* x, int64_t t0, int64_t t1);

// One pass over a packed tile for token pairs [p0, p1): y[t * ldy + row0 + r] for the
// tile's first n_rows rows and real tokens t.
using GemmTileFn = void (*)(const PackedTile& tile, const PackedActs& x, int64_t p0, int64_t p1, float* y,
                            int64_t ldy, int64_t row0, int n_rows);
// tp: token pairs per pass (register tile kGemmRows x 2·tp); 0 picks the default.
GemmTileFn avx2_gemm_tile(DType wt, int tp = 0);               // gemm_avx2.cpp
GemmTileFn avx512_gemm_tile(DType wt, bool vnni, int tp = 0);  // gemm_avx512.cpp

// f32 mode (the 16-lane order of kernels.h). Tiles: dequantize rows [0, rows) of a tile
// into wf ([kGemmRows][cols] floats) and compute y[t * ldy + row0 + r] for tokens [t0, t1)
// of the f32 activations x ([tokens][cols]). AVX2: gemm_f32_avx2.cpp, every batch size;
// AVX-512: f32_avx512.cpp, batches above kF32DecodeMax.
void avx2_gemm_f32_tile(DType wt, const uint8_t* w, size_t w_row_bytes, int rows, int64_t cols, float* wf,
                        const float* x, int64_t t0, int64_t t1, float* y, int64_t ldy, int64_t row0);
void avx512_gemm_f32_tile(DType wt, const uint8_t* w, size_t w_row_bytes, int rows, int64_t cols, float* wf,
                          const float* x, int64_t t0, int64_t t1, float* y, int64_t ldy, int64_t row0);
// AVX-512 decode: y[t * ldy + r] for rows [r0, r1) and all n_tok (1..kF32DecodeMax) tokens
// of x ([n_tok][cols]), streaming each weight row once.
constexpr int64_t kF32DecodeMax = 8;
void avx512_f32_decode(DType wt, const uint8_t* w, size_t w_row_bytes, int64_t cols, const float* x, int64_t n_tok,
                       float* y, int64_t ldy, int64_t r0, int64_t r1);

// Dispatch for the levels above (dispatch.cpp), nullptr where only the vec-dot loop exists.
MatvecFn matvec_fn(DType wt);
GemmTileFn gemm_tile_fn(DType wt, bool* offset_q8);

}  // namespace strata::cpu

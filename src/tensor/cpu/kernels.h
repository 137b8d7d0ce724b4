// CPU matrix kernels on quantized weights, in two numerics modes.
//
// f32 mode (`exact`; the default of every command): activations stay f32 and weights are
// dequantized. Every supported weight type dequantizes to the same floats however it is
// computed (block scale x integer code is exact in f32; Q4_1/Q5_1/K-quant minimums add
// with one rounding), so a (row, token) result is defined by one summation order, the
// "16-lane order": lane l accumulates fma(w_k, x_k, acc) for k = l, l+16, l+32, ... in
// turn (rows padded with zeros to a multiple of 16), then lanes i and i+8 are added, and
// the 8 sums are reduced as ggml's hsum_float_8 does. f32_lane_dot() is its scalar
// definition; the AVX2 and AVX-512 kernels (decode, batch 1..8, and the prefill tiles)
// reproduce it bit for bit, so results depend on neither the batch size, the thread count
// nor the ISA level, and chunked evaluation equals token-by-token decoding exactly.
//
// 8-bit mode (llama.cpp's scheme): a weight row of type W is multiplied with an
// activation row prepared in the type ggml pairs with W (Q4_0·Q8_0, Q4_1·Q8_1, Q5_0·Q8_0,
// Q5_1·Q8_1, Q8_0·Q8_0, IQ4_NL·Q8_0, Q4_K/Q5_K/Q6_K·Q8_K, F16·F16, BF16·F32, F32·F32), so
// our results follow llama.cpp's arithmetic. For the K-quants that arithmetic depends on
// the matrix's row count and the batch size (vec_dot, the tiled kernel or the q4_K repack;
// kquant.h), and matmul() picks the same form.
//
// Each vec-dot exists as scalar code (kernels.cpp) and, where it pays, as AVX2 / AVX-512
// variants chosen once at startup (dispatch.cpp). Tests force each level.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/thread_pool.h"
#include "tensor/dtype.h"

namespace strata::cpu {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3 };
Isa detected_isa();           // what the CPU supports
Isa active_isa();             // what kernels use (detected unless forced)
void force_isa(Isa isa);      // clamps to detected; for tests and benchmarks
const char* isa_name(Isa isa);

// Activation type paired with a weight type (F32 in exact mode or for F32 weights).
DType act_type_for(DType weight, bool exact);

// One activation row (n values) converted into act type `at` (n multiple of its block).
void quantize_act_row(const float* x, DType at, void* dst, int64_t n);

// The 16-lane order above, step by step: add() takes values k0 .. k0+m-1 of a row, in
// order; sum(n) pads a row of n values and reduces.
struct F32Lanes {
    float lane[16] = {};
    void add(const float* w, const float* x, int64_t k0, int64_t m);
    float sum(int64_t n);
};
// The f32-mode dot of one weight row (type wt, n values) with f32 activations x: the
// scalar definition every f32-mode kernel must equal bit for bit.
float f32_lane_dot(DType wt, const uint8_t* w, const float* x, int64_t n);

// dot(weight row of type wt, activation row of type act_type_for(wt)), n values.
using VecDotFn = float (*)(int64_t n, const void* w, const void* x);
VecDotFn vec_dot_fn(DType wt, bool exact);

// Q8_0/Q8_1 activations re-laid for the batched kernels: the quantized bytes of tokens
// 2p and 2p+1 for block i sit side by side (one 64-byte load feeds a 512-bit register),
// and the block scales are f32 (the f16 values of the blocks, converted) in block-major
// rows so that consecutive tokens' scales are one load. Padding tokens are all zero.
struct PackedActs {
    int64_t n_tok = 0, n_pairs = 0, nb = 0;
    int64_t ld = 0;  // floats per block in d/s: n_tok rounded up to 8, plus 8 of slack
    std::vector<uint8_t> storage;  // qs, 64-byte aligned inside
    std::vector<float> d, s;       // [nb][ld]; s (Q8_1's d·sum) is empty for Q8_0
    const int8_t* qs() const {     // [n_pairs][nb][2][32]
        const uintptr_t p = reinterpret_cast<uintptr_t>(storage.data());
        return reinterpret_cast<const int8_t*>((p + 63) & ~uintptr_t(63));
    }
};

// Prepared activations: n_rows rows of n_cols values in act type, and for batches that
// take the GEMM path also their packed form.
struct Acts {
    DType type = DType::F32;
    int64_t n_rows = 0, n_cols = 0;
    size_t row_bytes = 0;
    std::vector<uint8_t> buf;
    PackedActs packed;
    const uint8_t* row(int64_t r) const { return buf.data() + size_t(r) * row_bytes; }
};
void prepare_acts(const float* x, int64_t n_rows, int64_t n_cols, DType wt, bool exact, Acts* out);

// Y[b * ldy + r] = dot(W row r, X row b) for r in [r0, r1), b in [0, X.n_rows).
void gemm_rows(DType wt, const uint8_t* w, size_t w_row_bytes, const Acts& x, float* y,
               int64_t ldy, int64_t r0, int64_t r1, bool exact);

// Y[b * ldy + r] = dot(W row r, X row b) for all r < n_rows, b < n_batch: prepares the
// activations (into *scratch) and splits the work over the pool. The entry point model
// code uses; tiling and threading decisions live behind it.
void matmul(DType wt, const uint8_t* w, size_t w_row_bytes, int64_t n_rows, const float* x, int64_t n_batch,
            int64_t n_cols, float* y, int64_t ldy, bool exact, ThreadPool& pool, Acts* scratch);

// Several matrices applied to the same activations (attention's Q, K and V; the FFN's gate
// and up): y_i = W_i x for each output. Every (row, token) value equals matmul()'s bit for
// bit. At decode sizes the rows of all matrices are split over the pool in one round trip
// (and in the 8-bit mode the activations are quantized once); otherwise this is matmul()
// per output.
struct MatmulOut {
    DType wt;
    const uint8_t* w;
    size_t w_row_bytes;
    int64_t n_rows;
    float* y;
    int64_t ldy;
};
void matmul_shared_input(const MatmulOut* outs, int n_outs, const float* x, int64_t n_batch, int64_t n_cols,
                         bool exact, ThreadPool& pool, Acts* scratch);

}  // namespace strata::cpu

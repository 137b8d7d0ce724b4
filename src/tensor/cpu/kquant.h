// Internal to tensor/cpu: the 8-bit (q8) mode of the K-quants (Q4_K, Q5_K, Q6_K against
// Q8_K activations), written to equal llama.cpp's CPU results bit for bit.
//
// llama.cpp (ggml at llama-cpp-python 0.3.36, x86, AVX-512 VNNI build) does not compute a
// K-quant matrix product one way. It picks one of three arithmetic forms per matrix and
// batch size, and each rounds differently:
//   kVecDot  ggml_vec_dot_qN_K_q8_K, its `__AVX2__` body (AVX-512 builds use it too):
//            per super-block 8 int32 lanes (lane L: bytes 4L..4L+3 of every 32-value
//            group, times that group's scale), fma'd into 8 float lanes with d = dx·dw;
//            the minimum term in 4 lanes (Q4_K) or one fused scalar (Q5_K); hsum_float_8.
//            Used below 8 tokens for matrices that are not repacked.
//   kTiled   ggml-cpu/tiled (its AVX-512 VNNI microkernel), 8 or more tokens, matrices
//            not repacked: per super-block the exact integers S1 = sum_j sc_j·dot_j and
//            S2 = sum_j m_j·bsum_j; r = fnmadd(dmin, S2, S1·dw) (Q6_K: r = S1'·dw, S1' with
//            the -32 offset folded in), acc = fma(r, dx, acc).
//   kGemv,   Q4_K with a row count divisible by 8: llama.cpp's default CPU_REPACK buffer
//   kGemm    stores it as q4_K 8x8 and uses ggml_gemm_q4_K_8x8_q8_K for the tokens in whole
//            groups of four and ggml_gemv_q4_K_8x8_q8_K for the rest, at every batch size.
//            gemv: acc = fma(S1, dw·dx, acc), accm = fma(S2, dmin·dx, accm) per super-block,
//            y = acc - accm; gemm: the same per 64-value chunk (S1, S2 of its two groups).
//            The gemm tokens are quantized by the AVX2 4-row quantizer, which breaks a
//            +amax/-amax tie towards the positive value, the rest by quantize_row_q8_K_ref,
//            which takes the first (the results are equal either way; the bytes differ).
// The integers are exact however they are summed, so every ISA level computes the same
// integers its own way and then the form's float operations in ggml's order. The scalar
// code (kquant.cpp) is the definition; kquant_avx2.cpp / kquant_avx512.cpp equal it bit for
// bit, and kquant_test.cpp checks all of them against outputs of llama.cpp's ggml.
#pragma once

#include "tensor/cpu/simd.h"

namespace strata::cpu {

enum class KqForm { kVecDot = 0, kTiled = 1, kGemv = 2, kGemm = 3 };

// Out of line: no header inline code may be compiled into the ISA files (simd.h).
bool is_kquant(DType t);

// The form llama.cpp uses for a K-quant matrix of n_rows rows at batch size n_batch, for
// the token at index `tok` (kGemm for the repacked tokens in whole groups of four).
KqForm kq_form(DType wt, int64_t n_rows, int64_t n_batch, int64_t tok);

// Q8_K activations (ggml's quantize_row_q8_K_ref). `pos_tie`: the AVX2 4-row quantizer's
// sign choice (the kGemm tokens).
void quantize_row_q8_k_ref(const float* x, BlockQ8_K* y, int64_t n, bool pos_tie);

// The integers of one weight super-block against one Q8_K block, as ggml's vec_dot holds
// them; the other forms use their sums.
struct KqInts {
    int32_t lane[8];   // vec_dot lanes; Q6_K codes unsigned (0..63), offset not applied
    int32_t chunk[4];  // Q4_K/Q5_K: sc[2k]·dot[2k] + sc[2k+1]·dot[2k+1] (64-value chunk k)
    int32_t min4[4];   // Q4_K/Q5_K: m[2k]·bs32[2k] + m[2k+1]·bs32[2k+1]; Q6_K: 0
    int32_t off8[8];  // Q6_K: 32·(bsums[2L]·sc[2L] + bsums[2L+1]·sc[2L+1]); else 0
};
void kq_ints_scalar(DType wt, const uint8_t* wb, const BlockQ8_K& xb, KqInts* out);

// One (row, token) dot in form f, scalar: the definition.
float kq_dot_scalar(DType wt, KqForm f, int64_t n, const uint8_t* w, const BlockQ8_K* x);

// Rows [r0, r1) x tokens [0, n_tok) in form f: y[t * ldy + r] = dot(W row r, x row t), x
// rows of n/256 blocks. The SIMD kernels take kKqTokPass tokens per pass; given more, they
// unpack each group of rows once and sweep the tokens past it.
constexpr int64_t kKqTokPass = 4;
using KqRowsFn = void (*)(DType wt, KqForm f, int64_t n, const uint8_t* w, size_t rb, const BlockQ8_K* x,
                          int64_t n_tok, float* y, int64_t ldy, int64_t r0, int64_t r1);
void kq_rows_scalar(DType wt, KqForm f, int64_t n, const uint8_t* w, size_t rb, const BlockQ8_K* x, int64_t n_tok,
                    float* y, int64_t ldy, int64_t r0, int64_t r1);
KqRowsFn avx2_kq_rows(DType wt);    // kquant_avx2.cpp
KqRowsFn avx512_kq_rows(DType wt);  // kquant_avx512.cpp (AVX-512 BW)
KqRowsFn kq_rows_fn(DType wt);      // the active ISA's

// Prompt batches on AVX-512 VNNI (kTiled, kGemm): 16 tokens per register, one lane each, so
// a super-block's integers and float steps run for 16 tokens at once with no horizontal
// sums. Activations re-laid per 16-token block and super-block (padding tokens are zero):
struct alignas(64) KqActBlock {
    int8_t q[64][16][4];  // [4-byte group][token][byte]
    int32_t bs[16][16];   // [16-value group][token]: Q8_K bsums
    float d[16];
};
void kq_pack_acts(const BlockQ8_K* x, int64_t n_tok, int64_t nb, int64_t blk0, int64_t blk1, KqActBlock* out);
// Rows [r0, r1) x the n_tok tokens of the blocks xp ([block][nb]) in form f (kTiled or kGemm).
using KqGemmFn = void (*)(DType wt, KqForm f, int64_t n, const uint8_t* w, size_t rb, const KqActBlock* xp,
                          int64_t n_tok, float* y, int64_t ldy, int64_t r0, int64_t r1);
KqGemmFn avx512vnni_kq_gemm(DType wt);  // kquant_avx512.cpp

// Single-row vec-dots in the kVecDot form (what vec_dot_fn returns for K-quants in q8 mode).
VecDotFn scalar_kq_vec_dot(DType wt);
VecDotFn avx2_kq_vec_dot(DType wt);
VecDotFn avx512_kq_vec_dot(DType wt);

// matmul() in q8 mode for K-quant weights: activations quantized as the form needs, rows
// (and for small matrices tokens) split over the pool.
void kq_matmul(DType wt, const uint8_t* w, size_t w_row_bytes, int64_t n_rows, const float* x, int64_t n_batch,
               int64_t n_cols, float* y, int64_t ldy, ThreadPool& pool, Acts* scratch);

}  // namespace strata::cpu

// Factories of the built-in methods (one codec per file in this folder; registry.cpp
// lists them in help order) and the shape checks they share.
#pragma once

#include <memory>
#include <vector>

#include "kv/kv_cache.h"

namespace strata::kv {

std::unique_ptr<Method> make_fp32_method();
std::unique_ptr<Method> make_fp16_method();
std::unique_ptr<Method> make_q8_0_method();
std::unique_ptr<Method> make_q4_0_method();
std::unique_ptr<Method> make_q4_1_method();
std::unique_ptr<Method> make_kivi2_method();
std::unique_ptr<Method> make_kivi4_method();
// KIVI as in its paper (G = 32, FP16 residual R = 128, value FIFO): kivi_fifo.cpp.
std::unique_ptr<Method> make_kivi_fifo_method(int bits);
std::unique_ptr<Method> make_hk2_method();
std::unique_ptr<Method> make_varn2_method();
std::unique_ptr<Method> make_kvarn_method(int bits_k, int bits_v);
std::unique_ptr<Method> make_turboquant_method(int bits, bool fp_boundary_layers);
// TurboQuant paper algorithms TQ_mse / TQ_prod (tq_paper.h).
std::unique_ptr<Method> make_tq_paper_method(int bits, bool prod);

// n_head a positive multiple of n_head_kv, head_dim positive.
Status check_gqa(std::string_view method, const CacheShape& s);
// check_gqa plus head_dim a multiple of 32 (llama.cpp blocks).
Status check_block32(std::string_view method, const CacheShape& s);
// check_gqa plus head_dim a power of two in 8..256 (Hadamard, packed tiles).
Status check_pow2(std::string_view method, const CacheShape& s);

// ggml_vec_dot_f16's arithmetic (four 16-lane f32 accumulators per 64 values, fma, then
// the tree reduction of ops/ggml_math.h) for a dot product whose 64-value chunks lie in
// separate buffers: chunks[c] points at chunk c of b. Bit-identical to
// ops::dot_f16_ggml(a, b_contiguous, 64 * n_chunks).
// TurboQuant's Lloyd–Max centroids (ascending) for head size D (turboquant.cpp).
std::vector<float> turboquant_codebook(int D, int bits);

float dot_f16_ggml_chunked(const uint16_t* a, const uint16_t* const* chunks, int64_t n_chunks);

// lane_dot(a, n, f16 value of h[i]) (kv/lane_dot.h), bit for bit at every ISA level.
float lane_dot_f16(const float* a, const uint16_t* h, int64_t n);
// out[k] = lane_dot_f16(a[k], h, n) for k < m, bit for bit, sharing the loads of h (the
// query heads of one KV head against one key; one V column against their probabilities).
void lane_dot_f16_multi(const float* const* a, int m, const uint16_t* h, int64_t n, float* out);

// llama.cpp's prompt-batch f16 GEMM (llamafile tinyBLAS, taken for 2 or more query rows
// when flash attention is off): 16 lanes, one fma per lane per 16 values in order, then
// GCC's _mm512_reduce_add_ps. a and the chunks as dot_f16_ggml_chunked (64-value chunks;
// n_chunks = 1 with a 64-value b is a plain 64-value dot).
float dot_f16_sgemm_chunked(const uint16_t* a, const uint16_t* const* chunks, int64_t n_chunks);

// Pieces of ggml's CPU flash-attention op (docs/design.md, "llama.cpp parity"), AVX2/F16C
// with a scalar body of the same arithmetic. acc holds n f16 values as floats.
//  f16 accumulator (one query row, decode and short prompts): for each step j, when
//  rescale[j] != 1 first acc = f16(acc * rescale[j]), then acc = f16(fma(v_j, w[j], acc)).
void flash_accumulate_f16(float* acc, const uint16_t* const* v_rows, const float* rescale, const float* w,
                          int64_t steps, int64_t n);
//  f32 tile step (prompts of 64 rows or more): acc[d] = fma(v_t[d], p[t], acc[d]) for t in
//  order, rows of v f16.
void flash_accumulate_f32(float* acc, const uint16_t* const* v_rows, const float* p, int64_t steps, int64_t n);
//  kq[t] = sum over d in order of fma(k_t[d], q[d], .) from 0 (f32; k f16): kt is the tile
//  transposed, kt[d * 64 + t], 64 columns.
void flash_scores_f32(const float* q, const float* kt, int64_t dk, float* kq);

}  // namespace strata::kv

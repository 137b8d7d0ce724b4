// Elementwise and attention math with llama.cpp's CPU numerics, so Strata's default
// (llama.cpp-compatible) mode reproduces its results bit for bit on the same machine:
//  - exp: the polynomial ggml's x86 kernels use (2^n * p(b), n = round(x log2 e), degree-5
//    p, max error ~1.5 ulp) rather than libm's correctly rounded expf;
//  - softmax: exp in 16-lane chunks, each chunk summed as _mm512_reduce_add_ps orders it,
//    chunk sums accumulated in double;
//  - f16 dot products: ggml_vec_dot_f16's four 16-lane accumulators per 64 values, a tree
//    reduction, and a double-precision tail for what is left over.
// Each function has an AVX-512 body (ggml_math_avx512.cpp) used when the CPU has it, and a
// portable body with the same operation order (ggml_math.cpp). The f32 mode uses the exp
// too (SiLU and GELU, model/block_ops.h): about 1.5 ulp, the same bits at every ISA level.
#pragma once

#include <cstdint>

namespace strata::ops {

float expf_ggml(float x);  // one value
void vexp_ggml(const float* x, float* y, int64_t n);
// g[i] = silu(g[i]) * u[i] with silu(x) = x / (1 + exp(-x))
void swiglu_ggml(float* g, const float* u, int64_t n);
// y[i] = exp(x[i] - max); returns the sum (ggml_vec_soft_max_f32).
double softmax_exp_ggml(const float* x, float* y, int64_t n, float max);
// ggml_vec_dot_f16 over n f16 values.
float dot_f16_ggml(const uint16_t* a, const uint16_t* b, int64_t n);

}  // namespace strata::ops

// Internal to tensor/cpu: per-ISA kernel tables. Each SIMD translation unit is compiled
// with its own target flags and exports a lookup function that returns nullptr for pairs
// it does not accelerate, so dispatch falls back to the next lower level.
#pragma once

#include "tensor/cpu/kernels.h"

namespace strata::cpu {

VecDotFn scalar_vec_dot(DType wt, bool exact);
VecDotFn avx2_vec_dot(DType wt);    // vec_dot_avx2.cpp (quantized pairs only)
VecDotFn avx512_vec_dot(DType wt);  // vec_dot_avx512.cpp (nullptr where AVX2 is as good)

// Activation quantizers with the active ISA (same results as the reference quantizers).
void quantize_row_q8_0_fast(const float* x, void* dst, int64_t n);
void quantize_row_q8_1_fast(const float* x, void* dst, int64_t n);

}  // namespace strata::cpu

// AVX-512 vec-dots. Nothing yet beats the AVX2 kernels on the 32-value legacy blocks at
// SmolLM2's row lengths; this table is where 2-block-per-iteration variants go (issue #3).
#include "tensor/cpu/simd.h"

namespace strata::cpu {

VecDotFn avx512_vec_dot(DType, bool) { return nullptr; }

}  // namespace strata::cpu

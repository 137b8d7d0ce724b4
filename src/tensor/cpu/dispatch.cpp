// Runtime ISA detection and kernel selection. The binary is built for baseline x86-64;
// AVX2/AVX-512 kernels live in files compiled with those flags and are only called after
// __builtin_cpu_supports says the CPU has them.
#include <atomic>
#if defined(__x86_64__) && defined(__clang__)
#include <cpuid.h>
#endif

#include "tensor/cpu/kquant.h"

namespace strata::cpu {

namespace {
#if defined(__x86_64__)
// clang 14 (the fuzz/sanitizer build) does not know "f16c" in __builtin_cpu_supports.
bool has_f16c() {
#if defined(__clang__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
#else
    return __builtin_cpu_supports("f16c");
#endif
}
#endif

Isa detect() {
#if defined(__x86_64__)
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                      has_f16c();
    if (!avx2) return Isa::kScalar;
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl");
    if (!avx512) return Isa::kAvx2;
    if (__builtin_cpu_supports("avx512vnni")) return Isa::kAvx512Vnni;
    return Isa::kAvx512;
#else
    return Isa::kScalar;
#endif
}
std::atomic<int> g_forced{-1};
}  // namespace

Isa detected_isa() {
    static const Isa isa = detect();
    return isa;
}

Isa active_isa() {
    const int f = g_forced.load(std::memory_order_relaxed);
    return f < 0 ? detected_isa() : Isa(f);
}

void force_isa(Isa isa) {
    g_forced = int(isa) > int(detected_isa()) ? int(detected_isa()) : int(isa);
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::kScalar: return "scalar";
        case Isa::kAvx2: return "avx2";
        case Isa::kAvx512: return "avx512";
        case Isa::kAvx512Vnni: return "avx512vnni";
    }
    return "?";
}

VecDotFn vec_dot_fn(DType wt, bool exact) {
    const Isa isa = active_isa();
    if (!exact && is_kquant(wt)) {  // llama.cpp's vec_dot form (kquant.h)
        if (isa >= Isa::kAvx512)
            if (VecDotFn f = avx512_kq_vec_dot(wt)) return f;
        if (isa >= Isa::kAvx2)
            if (VecDotFn f = avx2_kq_vec_dot(wt)) return f;
        return scalar_kq_vec_dot(wt);
    }
    if (!exact) {
        if (isa >= Isa::kAvx512)
            if (VecDotFn f = avx512_vec_dot(wt, isa >= Isa::kAvx512Vnni)) return f;
        if (isa >= Isa::kAvx2)
            if (VecDotFn f = avx2_vec_dot(wt)) return f;
    }
    // f32 mode: the scalar definition of the 16-lane order at every level (the SIMD
    // kernels of this mode are row-batched; matmul() reaches them).
    return scalar_vec_dot(wt, exact);
}

MatvecFn matvec_fn(DType wt) {
    const Isa isa = active_isa();
    if (isa >= Isa::kAvx512)
        if (MatvecFn f = avx512_matvec(wt, isa >= Isa::kAvx512Vnni)) return f;
    if (isa >= Isa::kAvx2) return avx2_matvec(wt);
    return nullptr;
}

GemmTileFn gemm_tile_fn(DType wt, bool* offset_q8) {
    const Isa isa = active_isa();
    *offset_q8 = false;
    if (!gemm_packable(wt)) return nullptr;
    if (isa >= Isa::kAvx512) {
        // vpdpbusd takes unsigned weights: Q8_0 codes are stored as q+128 (gemm_pack.cpp).
        *offset_q8 = isa >= Isa::kAvx512Vnni;
        return avx512_gemm_tile(wt, *offset_q8);
    }
    if (isa >= Isa::kAvx2) return avx2_gemm_tile(wt);
    return nullptr;
}

}  // namespace strata::cpu

// Attention kernels of the tile formats (KVarN, its ablations, matched KIVI), one set per
// ISA level and picked at run time: the fused folded form over one tile record (spec §2.8,
// §7.2) and plain dot products / weighted sums over FP16 sink and tail rows, plus the
// softmax pieces. Scalar bodies and dispatch: tile_kernels.cpp (the oracle the SIMD ones
// are tested against); AVX2+FMA+F16C and AVX-512 bodies: tile_kernels_avx2.cpp /
// tile_kernels_avx512.cpp, both instantiated from tile_kernels-inl.h. The cache that
// drives them (token lifecycle, split-K over tiles, merge) is tile_cache.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kv/tile_format.h"
#include "tensor/cpu/simd.h"

namespace strata::kv {

struct TileKernels {
    const char* name;
    // scores[j*ld + t] = q_j · K[t] for the G tokens of record `rec`, j < g; q: [g][D] in
    // the record's frame, already scaled by 1/sqrt(D). scratch: tile_scratch_floats(L, g).
    void (*scores)(const TileLayout& L, const uint8_t* rec, const float* q, int g, float* scores, size_t ld,
                   float* scratch);
    // out[j][c] += sum_t p[j*ld + t] · V[t][c], out: [g][D].
    void (*values)(const TileLayout& L, const uint8_t* rec, const float* p, size_t ld, int g, float* out,
                   float* scratch);
    // FP16 rows: row i (D values) at rows + i*stride. scores[j*ld + i] = q_j · row_i.
    void (*fp_scores)(const uint16_t* rows, size_t stride, int n, int D, const float* q, int g, float* scores,
                      size_t ld);
    // out[j][c] += sum_i p[j*ld + i] · row_i[c].
    void (*fp_values)(const uint16_t* rows, size_t stride, int n, int D, const float* p, size_t ld, int g,
                      float* out);
    float (*max)(const float* x, int n);
    // x[i] <- exp(x[i] - m) for i < n; returns the sum (partial sums reduced in double).
    double (*exp_sum)(float* x, int n, float m);
    // VarN statistics of a [R][C] double tile (varn.cpp): column / row standard deviations
    // of x[i][j]·er[i] / x[i][j]·ec[j], unbiased, two-pass; mean: [C] scratch.
    void (*col_sd)(const double* x, int R, int C, const double* er, double* mean, double* sd);
    void (*row_sd)(const double* x, int R, int C, const double* ec, double* sd);
};

size_t tile_scratch_floats(const TileLayout& L, int g);

// The kernels of one ISA level; levels this build or CPU lacks give the next lower one.
const TileKernels& tile_kernels(cpu::Isa isa);
// The active ISA's kernels if they can run layout L (the SIMD bodies need D and G
// multiples of 64, i.e. stripe-ordered codes, varn.h), else the scalar ones.
const TileKernels& tile_kernels_for(const TileLayout& L);

// Per-ISA tables (defined in the per-ISA files; call only when the CPU has the ISA).
const TileKernels& tile_kernels_avx2();
const TileKernels& tile_kernels_avx512();

}  // namespace strata::kv

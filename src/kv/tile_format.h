// The tile record shared by KVarN, its ablations and matched KIVI (spec §2.3–2.8): one
// record per (tile of G tokens, KV head) holding K codes quantized per channel over the
// tile's tokens and V codes quantized per token over the channels, plus small FP16
// vectors. Field order (spec §2.7, FP16 little-endian, total rounded up to 8 bytes):
//   K codes [D][G*bk/8] | s1K[D] | zK[D] | s2K[G]* | V codes [G][D*bv/8] | s2V[D]* | s1V[G] | zV[G]
// (* only when VarN is on; without it the per-token K and per-channel V scales are 1 and
// the record is exactly KIVI's: codes + per-row step and minimum.)
// Codes are in the stripe order of varn.h (pack_tile_codes; spec §7.1 allows a SIMD-
// friendly order): same bytes as the reference order of §2.7, permuted within 16-byte
// blocks so a zero-extending load + shift + mask yields consecutive codes.
// Reconstruction: K[t][c] = s2K[t]·(s1K[c]·codeK[c][t] + zK[c]),
//                 V[t][c] = s2V[c]·(s1V[t]·codeV[t][c] + zV[t]).
// The fused kernels never rebuild K or V: scales fold into the query, the softmax weights
// and the output (spec §2.8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace strata::kv {

struct TileConfig {
    std::string_view name;
    int bits_k = 2, bits_v = 2;
    bool hadamard = true;  // rotate K, V and queries by H (spec §2.1)
    bool varn = true;      // dual-scale normalization before RTN (spec §2.4)
    int iterations = 16;   // VarN iterations
    int tile = 128;        // G tokens per tile
    int sink = 128;        // S FP tokens at the start (a multiple of G)
};

struct TileLayout {
    int D = 0, G = 0, bk = 0, bv = 0;
    bool scales2 = false;
    size_t k_codes = 0, s1k = 0, zk = 0, s2k = 0, v_codes = 0, s2v = 0, s1v = 0, zv = 0, total = 0;
};
TileLayout tile_layout(const TileConfig& c, int head_dim);

// k, v: [G][D] rotated (or not) vectors of one KV head; writes one record.
void encode_tile(const TileConfig& c, const TileLayout& L, const float* k, const float* v, uint8_t* rec);
// Reconstructs [G][D] K and V (same frame as encoded).
void decode_tile(const TileLayout& L, const uint8_t* rec, float* k, float* v);

// Scalar fused kernels over one record (the reference for tile_kernels.h's SIMD ones) for a group of g queries (already in the record's frame
// and scaled by 1/sqrt(D)). scores: [g][G] (row stride ld). Scratch `codes` >= max(D, G).
void tile_scores(const TileLayout& L, const uint8_t* rec, const float* q, int g, float* scores, size_t ld,
                 uint8_t* codes, float* scratch);
// out[j][c] += sum_t p[j][t] · V[t][c], p with row stride ld; partial: scratch >= g*(D+1).
void tile_values(const TileLayout& L, const uint8_t* rec, const float* p, size_t ld, int g, float* out,
                 uint8_t* codes, double* partial);

}  // namespace strata::kv

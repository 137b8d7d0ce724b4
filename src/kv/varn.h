// KVarN's tile quantizer pieces (spec §2.4–2.7), written to be read against the spec:
//  - varn(): dual-scale variance normalization of an R x C tile: one positive scale per
//    column (sc) and per row (sr) found by a Sinkhorn-like alternation in log space, so
//    that B = X / (sc[j]·sr[i]) has balanced row and column standard deviations;
//    the best-so-far (lowest imbalance) iterate is returned.
//  - rtn_rows(): asymmetric min/max round-to-nearest-even per row of a tile.
//  - pack_codes()/unpack_codes(): b-bit codes along a row. 2 and 4 bits follow the
//    reference layout (code i in byte i/p at bit (i mod p)·b, LSB first); 3 bits use the
//    2+1 bit-plane layout of spec §8.8 (a 2-bit plane of n/4 bytes, then a 1-bit plane of
//    n/8 bytes), 3 bits per code exactly. TurboQuant's rows use this layout.
//  - pack_tile_codes()/unpack_tile_codes(): the SIMD-friendly "stripe" order the tile
//    records use (spec §7.1; layout in the comment above pack_tile_codes).
// Statistics are computed in double (the spec asks for FP32 or better); codes and tiles
// are float.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace strata::kv {

struct VarnResult {
    std::vector<float> sc;  // [C] column scales
    std::vector<float> sr;  // [R] row scales
    double imbalance = 0;   // imb() of the returned scaling
    double imbalance_in = 0;
};

// x: [R][C] row-major. Does not modify x.
VarnResult varn(const float* x, int rows, int cols, int iterations);
// Imbalance of a tile (spec §2.4): max/min column std + max/min row std.
double imbalance(const float* x, int rows, int cols);

struct RtnRow {
    float lo, d;  // x ~ lo + d * code
};
// Quantizes row x[0..n) to codes in [0, 2^bits - 1].
RtnRow rtn_row(const float* x, int n, int bits, uint8_t* codes);

size_t packed_bytes(int n, int bits);  // n a multiple of 8
void pack_codes(const uint8_t* codes, int n, int bits, uint8_t* dst);
void unpack_codes(const uint8_t* src, int n, int bits, uint8_t* codes);

// Stripe order of the tile records, used for rows of n % 64 == 0 codes (every K row with
// G = 64/128 and every V row with D >= 64); other rows fall back to the reference order
// above. Same bytes per row as pack_codes. A row is cut into blocks of 16 bytes:
//   4 bits: block of 32 codes; byte j (0..15) holds code j (low nibble) and j+16 (high).
//   2 bits: block of 64 codes; byte j holds codes j, j+16, j+32, j+48 at bits 0,2,4,6.
//   3 bits: the 2-bit plane (n/4 bytes, 2-bit stripe order of the low two bits), then a
//           1-bit plane of 8 bytes per 64-code block: bit 4·(j/8)+k of byte j%8 is the
//           high bit of code j + 16k (j 0..15, k 0..3).
// One zero-extending load of 16 (AVX-512) or 8 (AVX2) bytes to 32-bit lanes plus a shift
// and a mask then yields 16 or 8 *consecutive* codes per vector with no shuffles, so the
// kernels convert codes straight to floats (tile_kernels-inl.h).
bool tile_stripe_order(int n);
void pack_tile_codes(const uint8_t* codes, int n, int bits, uint8_t* dst);
void unpack_tile_codes(const uint8_t* src, int n, int bits, uint8_t* codes);

}  // namespace strata::kv

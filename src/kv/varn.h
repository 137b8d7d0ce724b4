// KVarN's tile quantizer pieces (spec §2.4–2.7), written to be read against the spec:
//  - varn(): dual-scale variance normalization of an R x C tile: one positive scale per
//    column (sc) and per row (sr) found by a Sinkhorn-like alternation in log space, so
//    that B = X / (sc[j]·sr[i]) has balanced row and column standard deviations;
//    the best-so-far (lowest imbalance) iterate is returned.
//  - rtn_rows(): asymmetric min/max round-to-nearest-even per row of a tile.
//  - pack_codes()/unpack_codes(): b-bit codes along a row. 2 and 4 bits follow the
//    reference layout (code i in byte i/p at bit (i mod p)·b, LSB first); 3 bits use the
//    2+1 bit-plane layout of spec §8.8 (a 2-bit plane of n/4 bytes, then a 1-bit plane of
//    n/8 bytes), 3 bits per code exactly.
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

}  // namespace strata::kv

// Tile record encode/decode and the scalar fused attention kernels (tile_format.h). These
// kernels are the reference for the AVX2 / AVX-512 ones of tile_kernels-inl.h, which the
// cache uses when the CPU has them (tile_kernels.h).
#include "kv/tile_format.h"

#include <cstring>
#include <vector>

#include "kv/varn.h"
#include "tensor/dtype.h"

namespace strata::kv {

namespace {
const uint16_t* f16(const uint8_t* rec, size_t off) { return reinterpret_cast<const uint16_t*>(rec + off); }
uint16_t* f16(uint8_t* rec, size_t off) { return reinterpret_cast<uint16_t*>(rec + off); }
}  // namespace

TileLayout tile_layout(const TileConfig& c, int D) {
    TileLayout L;
    L.D = D, L.G = c.tile, L.bk = c.bits_k, L.bv = c.bits_v, L.scales2 = c.varn;
    size_t o = 0;
    L.k_codes = o, o += packed_bytes(L.G, L.bk) * size_t(D);
    L.s1k = o, o += 2 * size_t(D);
    L.zk = o, o += 2 * size_t(D);
    L.s2k = o, o += L.scales2 ? 2 * size_t(L.G) : 0;
    L.v_codes = o, o += packed_bytes(D, L.bv) * size_t(L.G);
    L.s2v = o, o += L.scales2 ? 2 * size_t(D) : 0;
    L.s1v = o, o += 2 * size_t(L.G);
    L.zv = o, o += 2 * size_t(L.G);
    L.total = (o + 7) / 8 * 8;
    return L;
}

void encode_tile(const TileConfig& c, const TileLayout& L, const float* k, const float* v, uint8_t* rec) {
    const int D = L.D, G = L.G;
    std::memset(rec, 0, L.total);
    std::vector<float> xk(size_t(D) * size_t(G)), b(std::max(size_t(D), size_t(G)));
    std::vector<uint8_t> codes(std::max(size_t(D), size_t(G)));
    for (int t = 0; t < G; ++t)
        for (int ch = 0; ch < D; ++ch) xk[size_t(ch) * size_t(G) + size_t(t)] = k[size_t(t) * size_t(D) + size_t(ch)];
    // K tile: rows = channels, columns = tokens (spec §2.3).
    VarnResult rk;
    if (c.varn) rk = varn(xk.data(), D, G, c.iterations);
    for (int ch = 0; ch < D; ++ch) {
        const float sr = c.varn ? rk.sr[size_t(ch)] : 1.f;
        for (int t = 0; t < G; ++t)
            b[size_t(t)] = xk[size_t(ch) * size_t(G) + size_t(t)] / ((c.varn ? rk.sc[size_t(t)] : 1.f) * sr);
        const RtnRow r = rtn_row(b.data(), G, L.bk, codes.data());
        pack_tile_codes(codes.data(), G, L.bk, rec + L.k_codes + size_t(ch) * packed_bytes(G, L.bk));
        f16(rec, L.s1k)[ch] = fp32_to_fp16(sr * r.d);
        f16(rec, L.zk)[ch] = fp32_to_fp16(sr * r.lo);
    }
    if (c.varn)
        for (int t = 0; t < G; ++t) f16(rec, L.s2k)[t] = fp32_to_fp16(rk.sc[size_t(t)]);
    // V tile: rows = tokens, columns = channels.
    VarnResult rv;
    if (c.varn) rv = varn(v, G, D, c.iterations);
    for (int t = 0; t < G; ++t) {
        const float sr = c.varn ? rv.sr[size_t(t)] : 1.f;
        for (int ch = 0; ch < D; ++ch)
            b[size_t(ch)] = v[size_t(t) * size_t(D) + size_t(ch)] / ((c.varn ? rv.sc[size_t(ch)] : 1.f) * sr);
        const RtnRow r = rtn_row(b.data(), D, L.bv, codes.data());
        pack_tile_codes(codes.data(), D, L.bv, rec + L.v_codes + size_t(t) * packed_bytes(D, L.bv));
        f16(rec, L.s1v)[t] = fp32_to_fp16(sr * r.d);
        f16(rec, L.zv)[t] = fp32_to_fp16(sr * r.lo);
    }
    if (c.varn)
        for (int ch = 0; ch < D; ++ch) f16(rec, L.s2v)[ch] = fp32_to_fp16(rv.sc[size_t(ch)]);
}

void decode_tile(const TileLayout& L, const uint8_t* rec, float* k, float* v) {
    const int D = L.D, G = L.G;
    std::vector<uint8_t> codes(std::max(size_t(D), size_t(G)));
    for (int ch = 0; ch < D; ++ch) {
        unpack_tile_codes(rec + L.k_codes + size_t(ch) * packed_bytes(G, L.bk), G, L.bk, codes.data());
        const float s1 = fp16_to_fp32(f16(rec, L.s1k)[ch]), z = fp16_to_fp32(f16(rec, L.zk)[ch]);
        for (int t = 0; t < G; ++t) {
            const float s2 = L.scales2 ? fp16_to_fp32(f16(rec, L.s2k)[t]) : 1.f;
            k[size_t(t) * size_t(D) + size_t(ch)] = s2 * (s1 * float(codes[size_t(t)]) + z);
        }
    }
    for (int t = 0; t < G; ++t) {
        unpack_tile_codes(rec + L.v_codes + size_t(t) * packed_bytes(D, L.bv), D, L.bv, codes.data());
        const float s1 = fp16_to_fp32(f16(rec, L.s1v)[t]), z = fp16_to_fp32(f16(rec, L.zv)[t]);
        for (int ch = 0; ch < D; ++ch) {
            const float s2 = L.scales2 ? fp16_to_fp32(f16(rec, L.s2v)[ch]) : 1.f;
            v[size_t(t) * size_t(D) + size_t(ch)] = s2 * (s1 * float(codes[size_t(ch)]) + z);
        }
    }
}

void tile_scores(const TileLayout& L, const uint8_t* rec, const float* q, int g, float* scores, size_t ld,
                 uint8_t* codes, float* scratch) {
    const int D = L.D, G = L.G;
    float* beta = scratch;  // [g]
    for (int j = 0; j < g; ++j) {
        std::memset(scores + size_t(j) * ld, 0, sizeof(float) * size_t(G));
        beta[j] = 0;
    }
    // a[c] = q[c]·s1K[c] folds the per-channel step into the query; the zero-points
    // collapse into one scalar beta per query.
    for (int ch = 0; ch < D; ++ch) {
        unpack_tile_codes(rec + L.k_codes + size_t(ch) * packed_bytes(G, L.bk), G, L.bk, codes);
        const float s1 = fp16_to_fp32(f16(rec, L.s1k)[ch]), z = fp16_to_fp32(f16(rec, L.zk)[ch]);
        for (int j = 0; j < g; ++j) {
            const float a = q[size_t(j) * size_t(D) + size_t(ch)] * s1;
            beta[j] += q[size_t(j) * size_t(D) + size_t(ch)] * z;
            float* s = scores + size_t(j) * ld;
            for (int t = 0; t < G; ++t) s[t] += a * float(codes[t]);
        }
    }
    for (int j = 0; j < g; ++j) {
        float* s = scores + size_t(j) * ld;
        if (L.scales2) {
            for (int t = 0; t < G; ++t) s[t] = fp16_to_fp32(f16(rec, L.s2k)[t]) * (s[t] + beta[j]);
        } else {
            for (int t = 0; t < G; ++t) s[t] += beta[j];
        }
    }
}

void tile_values(const TileLayout& L, const uint8_t* rec, const float* p, size_t ld, int g, float* out,
                 uint8_t* codes, double* partial) {
    const int D = L.D, G = L.G;
    // Double sums: partial and gamma cancel (codes are offsets from each token's minimum),
    // and this loop is the reference the SIMD kernels are tested against.
    std::fill(partial, partial + size_t(g) * size_t(D + 1), 0.0);
    double* gamma = partial + size_t(g) * size_t(D);
    // w[t] = p[t]·s1V[t] folds the per-token step into the softmax weight; zero-points
    // sum to gamma; the per-channel scale s2V multiplies the tile's output once.
    for (int t = 0; t < G; ++t) {
        unpack_tile_codes(rec + L.v_codes + size_t(t) * packed_bytes(D, L.bv), D, L.bv, codes);
        const float s1 = fp16_to_fp32(f16(rec, L.s1v)[t]), z = fp16_to_fp32(f16(rec, L.zv)[t]);
        for (int j = 0; j < g; ++j) {
            const float pt = p[size_t(j) * ld + size_t(t)];
            if (pt == 0.f) continue;
            const float w = pt * s1;
            gamma[j] += double(pt * z);
            double* pa = partial + size_t(j) * size_t(D);
            for (int ch = 0; ch < D; ++ch) pa[ch] += double(w * float(codes[ch]));
        }
    }
    for (int j = 0; j < g; ++j) {
        const double* pa = partial + size_t(j) * size_t(D);
        float* o = out + size_t(j) * size_t(D);
        for (int ch = 0; ch < D; ++ch) {
            const float s2 = L.scales2 ? fp16_to_fp32(f16(rec, L.s2v)[ch]) : 1.f;
            o[ch] += s2 * float(pa[ch] + gamma[j]);
        }
    }
}

}  // namespace strata::kv

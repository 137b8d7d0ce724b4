// K-quants in the 8-bit mode (kquant.h): Q8_K activation quantizers, the scalar definition
// of llama.cpp's three arithmetic forms, dispatch, and the matmul driver. SIMD versions of
// the integer part are in kquant_avx2.cpp / kquant_avx512.cpp.
#include "tensor/cpu/kquant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/status.h"

namespace strata::cpu {

namespace {

// The 6-bit scales and minimums of a Q4_K/Q5_K super-block (ggml's get_scale_min_k4).
void scales_mins_k4(const uint8_t* q, int* sc, int* m) {
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            sc[j] = q[j] & 63, m[j] = q[j + 4] & 63;
        } else {
            sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            m[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }
}

// Value v (0..255) of a super-block as an unsigned code, and the index of its scale.
int code_at(DType wt, const uint8_t* wb, int v, int* scale_idx) {
    if (wt == DType::Q6_K) {
        auto* b = reinterpret_cast<const BlockQ6_K*>(wb);
        const int g = v / 32, p = v % 32, h = g / 4, k = g % 4;
        *scale_idx = 2 * g + p / 16;
        const int lo = (b->ql[64 * h + 32 * (k & 1) + p] >> (4 * (k >> 1))) & 0xF;
        return lo | (((b->qh[32 * h + p] >> (2 * k)) & 3) << 4);
    }
    const int j = v / 64, p = v % 32, hi = (v / 32) % 2;
    *scale_idx = 2 * j + hi;
    const uint8_t* qs = wt == DType::Q4_K ? reinterpret_cast<const BlockQ4_K*>(wb)->qs
                                          : reinterpret_cast<const BlockQ5_K*>(wb)->qs;
    int c = (qs[32 * j + p] >> (4 * hi)) & 0xF;
    if (wt == DType::Q5_K) c |= ((reinterpret_cast<const BlockQ5_K*>(wb)->qh[p] >> (2 * j + hi)) & 1) << 4;
    return c;
}

// ggml's hsum_float_8: (lanes 4-7 + 0-3), then pairs.
float hsum8(const float* a) {
    const float r0 = a[4] + a[0], r1 = a[5] + a[1], r2 = a[6] + a[2], r3 = a[7] + a[3];
    return (r0 + r2) + (r1 + r3);
}

float scalar_vec_dot_q4_k(int64_t n, const void* w, const void* x) {
    return kq_dot_scalar(DType::Q4_K, KqForm::kVecDot, n, static_cast<const uint8_t*>(w), static_cast<const BlockQ8_K*>(x));
}
float scalar_vec_dot_q5_k(int64_t n, const void* w, const void* x) {
    return kq_dot_scalar(DType::Q5_K, KqForm::kVecDot, n, static_cast<const uint8_t*>(w), static_cast<const BlockQ8_K*>(x));
}
float scalar_vec_dot_q6_k(int64_t n, const void* w, const void* x) {
    return kq_dot_scalar(DType::Q6_K, KqForm::kVecDot, n, static_cast<const uint8_t*>(w), static_cast<const BlockQ8_K*>(x));
}

}  // namespace

bool is_kquant(DType t) { return t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K; }

KqForm kq_form(DType wt, int64_t n_rows, int64_t n_batch, int64_t tok) {
    if (wt == DType::Q4_K && n_rows % 8 == 0)  // q4_K_8x8 repack (ggml_repack_get_optimal_repack_type)
        return tok < n_batch - n_batch % 4 ? KqForm::kGemm : KqForm::kGemv;
    return n_batch >= 8 ? KqForm::kTiled : KqForm::kVecDot;  // ggml_tiled_min_batch
}

void quantize_row_q8_k_ref(const float* x, BlockQ8_K* y, int64_t n, bool pos_tie) {
    for (int64_t i = 0; i < n / 256; ++i, x += 256) {
        float amax = 0, mx = 0;
        bool pos_max = false;  // some value equals +amax
        for (int j = 0; j < 256; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) amax = ax, mx = x[j];
        }
        for (int j = 0; j < 256 && pos_tie; ++j) pos_max = pos_max || x[j] == amax;
        if (amax == 0) {  // ggml leaves bsums unwritten here; zero is what they multiply
            y[i].d = 0;
            std::memset(y[i].qs, 0, sizeof y[i].qs);
            std::memset(y[i].bsums, 0, sizeof y[i].bsums);
            continue;
        }
        const float iscale = pos_tie ? (pos_max ? -127.f / amax : 127.f / amax) : -127.f / mx;
        for (int j = 0; j < 256; ++j) {
            const int v = int(std::nearbyint(iscale * x[j]));  // nearest_int: ties to even
            y[i].qs[j] = int8_t(std::min(127, v));
        }
        for (int k = 0; k < 16; ++k) {
            int sum = 0;
            for (int j = 0; j < 16; ++j) sum += y[i].qs[16 * k + j];
            y[i].bsums[k] = int16_t(sum);
        }
        y[i].d = 1.f / iscale;
    }
}

void kq_ints_scalar(DType wt, const uint8_t* wb, const BlockQ8_K& xb, KqInts* out) {
    std::memset(out, 0, sizeof *out);
    int sc[16], m[8] = {};
    if (wt == DType::Q6_K) {
        for (int s = 0; s < 16; ++s) sc[s] = reinterpret_cast<const BlockQ6_K*>(wb)->scales[s];
    } else {
        scales_mins_k4(wt == DType::Q4_K ? reinterpret_cast<const BlockQ4_K*>(wb)->scales
                                         : reinterpret_cast<const BlockQ5_K*>(wb)->scales, sc, m);
    }
    for (int v = 0; v < 256; ++v) {
        int si;
        const int c = code_at(wt, wb, v, &si);
        out->lane[(v % 32) / 4] += sc[si] * c * xb.qs[v];
        out->chunk[v / 64] += sc[si] * c * xb.qs[v];
    }
    if (wt == DType::Q6_K) {
        for (int l = 0; l < 8; ++l)
            out->off8[l] = 32 * (xb.bsums[2 * l] * sc[2 * l] + xb.bsums[2 * l + 1] * sc[2 * l + 1]);
    } else {
        int bs32[8];
        for (int k = 0; k < 8; ++k) bs32[k] = xb.bsums[2 * k] + xb.bsums[2 * k + 1];
        for (int k = 0; k < 4; ++k) out->min4[k] = m[2 * k] * bs32[2 * k] + m[2 * k + 1] * bs32[2 * k + 1];
    }
}

float kq_dot_scalar(DType wt, KqForm f, int64_t n, const uint8_t* w, const BlockQ8_K* x) {
    const size_t bb = dtype_info_checked(wt).block_bytes;
    float acc8[8] = {}, accm4[4] = {}, summs = 0, acc = 0, accm = 0;
    for (int64_t i = 0; i < n / 256; ++i) {
        const uint8_t* wb = w + size_t(i) * bb;
        KqInts k;
        kq_ints_scalar(wt, wb, x[i], &k);
        uint16_t dh, mh = 0;
        std::memcpy(&dh, wt == DType::Q6_K ? wb + 208 : wb, 2);
        if (wt != DType::Q6_K) std::memcpy(&mh, wb + 2, 2);
        const float dw = fp16_to_fp32(dh), dminw = fp16_to_fp32(mh);
        int s1 = 0, s2 = 0;
        for (int l = 0; l < 8; ++l) s1 += k.lane[l] - k.off8[l];
        for (int l = 0; l < 4; ++l) s2 += k.min4[l];
        switch (f) {
            case KqForm::kVecDot: {
                const float d = x[i].d * dw, dmin = -x[i].d * dminw;
                for (int l = 0; l < 8; ++l) acc8[l] = std::fma(d, float(k.lane[l] - k.off8[l]), acc8[l]);
                if (wt == DType::Q4_K)
                    for (int l = 0; l < 4; ++l) accm4[l] = std::fma(dmin, float(k.min4[l]), accm4[l]);
                if (wt == DType::Q5_K) summs = std::fma(dmin, float(s2), summs);
                break;
            }
            case KqForm::kTiled: {
                float r = float(s1) * dw;
                if (wt != DType::Q6_K) r = std::fma(-dminw, float(s2), r);
                acc = std::fma(r, x[i].d, acc);
                break;
            }
            case KqForm::kGemv:
                acc = std::fma(float(s1), dw * x[i].d, acc);
                accm = std::fma(float(s2), dminw * x[i].d, accm);
                break;
            case KqForm::kGemm:
                for (int j = 0; j < 4; ++j) {
                    acc = std::fma(float(k.chunk[j]), dw * x[i].d, acc);
                    accm = std::fma(float(k.min4[j]), dminw * x[i].d, accm);
                }
                break;
        }
    }
    switch (f) {
        case KqForm::kVecDot:
            if (wt == DType::Q4_K) return hsum8(acc8) + ((accm4[0] + accm4[2]) + (accm4[1] + accm4[3]));
            if (wt == DType::Q5_K) return hsum8(acc8) + summs;
            return hsum8(acc8);
        case KqForm::kTiled: return acc;
        case KqForm::kGemv: case KqForm::kGemm: return acc - accm;
    }
    return 0;
}

void kq_rows_scalar(DType wt, KqForm f, int64_t n, const uint8_t* w, size_t rb, const BlockQ8_K* x, int64_t n_tok,
                    float* y, int64_t ldy, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
        for (int64_t t = 0; t < n_tok; ++t) y[t * ldy + r] = kq_dot_scalar(wt, f, n, w + size_t(r) * rb, x + t * (n / 256));
}

VecDotFn scalar_kq_vec_dot(DType wt) {
    switch (wt) {
        case DType::Q4_K: return scalar_vec_dot_q4_k;
        case DType::Q5_K: return scalar_vec_dot_q5_k;
        case DType::Q6_K: return scalar_vec_dot_q6_k;
        default: return nullptr;
    }
}

void kq_pack_acts(const BlockQ8_K* x, int64_t n_tok, int64_t nb, int64_t blk0, int64_t blk1, KqActBlock* out) {
    for (int64_t b = blk0; b < blk1; ++b)
        for (int64_t i = 0; i < nb; ++i) {
            KqActBlock& o = out[b * nb + i];
            std::memset(&o, 0, sizeof o);
            for (int64_t t = 16 * b; t < std::min(n_tok, 16 * b + 16); ++t) {
                const BlockQ8_K& xb = x[t * nb + i];
                const int64_t l = t - 16 * b;
                for (int g = 0; g < 64; ++g) std::memcpy(o.q[g][l], xb.qs + 4 * g, 4);
                for (int g = 0; g < 16; ++g) o.bs[g][l] = xb.bsums[g];
                o.d[l] = xb.d;
            }
        }
}

KqRowsFn kq_rows_fn(DType wt) {
    const Isa isa = active_isa();
    if (isa >= Isa::kAvx512)
        if (KqRowsFn f = avx512_kq_rows(wt)) return f;
    if (isa >= Isa::kAvx2)
        if (KqRowsFn f = avx2_kq_rows(wt)) return f;
    return kq_rows_scalar;
}

void kq_matmul(DType wt, const uint8_t* w, size_t rb, int64_t n_rows, const float* x, int64_t n_batch, int64_t n_cols,
               float* y, int64_t ldy, ThreadPool& pool, Acts* scratch) {
    Acts& a = *scratch;
    a.type = DType::Q8_K;
    a.n_rows = n_batch;
    a.n_cols = n_cols;
    a.row_bytes = dtype_row_bytes(DType::Q8_K, uint64_t(n_cols));
    a.buf.resize(a.row_bytes * size_t(n_batch));
    auto prep = [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
            quantize_row_q8_k_ref(x + t * n_cols, reinterpret_cast<BlockQ8_K*>(a.buf.data() + size_t(t) * a.row_bytes),
                                  n_cols, kq_form(wt, n_rows, n_batch, t) == KqForm::kGemm);
    };
    if (n_batch > 1 && n_batch * n_cols >= 8192) pool.parallel_for(n_batch, 1, prep);
    else prep(0, n_batch);
    const auto* xq = reinterpret_cast<const BlockQ8_K*>(a.buf.data());
    const KqRowsFn fn = kq_rows_fn(wt);
    const int64_t nb = n_cols / 256;
    // Prompt batches on AVX-512 VNNI: the token-lane GEMM for the kTiled/kGemm tokens (a
    // prefix: all tokens, or the whole groups of four), the row kernels for the rest.
    const KqGemmFn lane = active_isa() >= Isa::kAvx512Vnni ? avx512vnni_kq_gemm(wt) : nullptr;
    const KqForm f0 = kq_form(wt, n_rows, n_batch, 0);
    int64_t n_lane = 0;
    if (lane && (f0 == KqForm::kTiled || f0 == KqForm::kGemm))
        while (n_lane < n_batch && kq_form(wt, n_rows, n_batch, n_lane) == f0) ++n_lane;
    if (n_lane >= 16) {
        const int64_t n_blk = (n_lane + 15) / 16;
        const size_t need = size_t(n_blk * nb) * sizeof(KqActBlock) + 64;
        if (a.packed.storage.size() < need) a.packed.storage.resize(need);
        auto* xp = reinterpret_cast<KqActBlock*>((reinterpret_cast<uintptr_t>(a.packed.storage.data()) + 63) & ~uintptr_t(63));
        pool.parallel_for(n_blk, 1, [&](int64_t b0, int64_t b1) { kq_pack_acts(xq, n_lane, nb, b0, b1, xp); });
        pool.parallel_for(n_rows, 4, [&](int64_t r0, int64_t r1) {
            lane(wt, f0, n_cols, w, rb, xp, n_lane, y, ldy, r0, r1);
            if (n_lane < n_batch)
                fn(wt, kq_form(wt, n_rows, n_batch, n_lane), n_cols, w, rb, xq + n_lane * nb, n_batch - n_lane,
                   y + n_lane * ldy, ldy, r0, r1);
        });
        return;
    }
    // Row ranges per thread; within one, token chunks outermost (a chunk's activations,
    // <= 64 x 2.3 KB for 2048 columns, stay in L2) and 16-row groups swept by all of them.
    constexpr int64_t kTokChunk = 64, kRowGroup = 16;
    auto run = [&](int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
        for (int64_t c0 = t0; c0 < t1; c0 += kTokChunk) {
            const int64_t c1 = std::min(t1, c0 + kTokChunk);
            for (int64_t g0 = r0; g0 < r1; g0 += kRowGroup) {
                const int64_t g1 = std::min(r1, g0 + kRowGroup);
                for (int64_t t = c0; t < c1;) {  // calls never mix forms (kGemm, kGemv)
                    const KqForm f = kq_form(wt, n_rows, n_batch, t);
                    int64_t e = t + 1;
                    while (e < c1 && kq_form(wt, n_rows, n_batch, e) == f) ++e;
                    fn(wt, f, n_cols, w, rb, xq + t * nb, e - t, y + t * ldy, ldy, g0, g1);
                    t = e;
                }
            }
        }
    };
    // Few rows for the threads (tests, tiny matrices): split the tokens instead.
    const int nt = pool.n_threads();
    if (n_rows >= 16 * nt || n_batch < nt) {
        pool.parallel_for(n_rows, 4, [&](int64_t r0, int64_t r1) { run(r0, r1, 0, n_batch); });
    } else {
        pool.parallel_for(n_batch, 1, [&](int64_t t0, int64_t t1) { run(0, n_rows, t0, t1); });
    }
}

}  // namespace strata::cpu

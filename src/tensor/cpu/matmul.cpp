// matmul(): the one entry point model code calls. It prepares the activations (in
// parallel for large batches) and picks a kernel family and a work split:
//   batch 1, quantized  -> multi-row matvec (matvec_*.cpp), rows split across threads;
//   batch > 1, Q4/Q5/Q8 -> packed-tile GEMM (gemm_*.cpp), row tiles split across threads,
//                          and token pairs too when there are too few tiles to go round;
//   f32 mode, AVX-512   -> batch <= 8: the decode kernel (f32_avx512.cpp), rows split
//                          across threads; larger batches: f32 tiles (same file);
//   f32 mode, AVX2      -> f32 tiles (gemm_f32_avx2.cpp), every batch size;
//   K-quants, 8-bit mode -> kq_matmul (kquant.cpp): llama.cpp's three arithmetic forms;
//   anything else       -> the vec-dot loop gemm_rows() (scalar level, f16/f32 in the
//                          8-bit mode).
// All 8-bit-mode paths except the K-quants' give every (row, token) the same ISA level's
// vec-dot value bit for bit (at AVX2 and up: llama.cpp's AVX2 arithmetic), so neither the
// path nor the tile or thread count changes results. K-quants follow llama.cpp, whose
// arithmetic depends on the batch size and the row count (kquant.h), at every ISA level.
// Every f32-mode path computes the 16-lane order of kernels.h, so its results do not depend
// on the path, the ISA level or the threads.
#include <algorithm>
#include <cstdlib>

#include "base/status.h"
#include "tensor/cpu/kquant.h"

namespace strata::cpu {

namespace {

// Below this many activation values a pool round-trip costs more than quantizing.
constexpr int64_t kParallelPrepValues = 8192;
// Token pairs per GEMM chunk (see gemm_range).
constexpr int64_t kPairsPerChunk = 128;
// f32 activation bytes per token chunk of the f32 tiles (a multiple of their 6-token pass).
constexpr int64_t kF32ChunkBytes = 256 << 10;

struct ScratchBuffers {
    struct Buf {
        uint8_t* p = nullptr;
        size_t cap = 0;
    } bufs[kScratchSlots];
    ~ScratchBuffers() {
        for (Buf& b : bufs) std::free(b.p);
    }
};

// A thread's packed weight tile in its scratch slot (prefill issues ~200 matmuls).
PackedTile tile_buffer(int64_t nb) {
    const size_t codes = size_t(nb) * kGemmRows * 32, scales = size_t(nb) * kGemmRows * sizeof(float);
    uint8_t* p = thread_scratch(kScratchGemmTile, codes + 2 * scales);
    PackedTile t;
    t.codes = p;
    t.d = reinterpret_cast<float*>(p + codes);
    t.m = reinterpret_cast<float*>(p + codes + scales);
    return t;
}

void size_acts(Acts* a, DType wt, bool exact, int64_t n_rows, int64_t n_cols) {
    a->type = act_type_for(wt, exact);
    a->n_rows = n_rows;
    a->n_cols = n_cols;
    a->row_bytes = dtype_row_bytes(a->type, uint64_t(n_cols));
    a->buf.resize(a->row_bytes * size_t(n_rows));
}

// One thread's share of the quantized GEMM: row tiles [tile0, tile1) x token pairs [p0, p1).
void gemm_range(GemmTileFn fn, bool offset_q8, DType wt, const uint8_t* w, size_t rb, int64_t n_rows,
                const Acts& x, float* y, int64_t ldy, int64_t tile0, int64_t tile1, int64_t p0, int64_t p1) {
    const int64_t nb = x.n_cols / 32;
    PackedTile t = tile_buffer(nb);
    // Token chunks outermost: a chunk's activations (<= 256 tokens x 1-2 KB) stay in L2
    // while every row tile streams past; each tile is re-packed once per chunk.
    for (int64_t c0 = p0; c0 < p1; c0 += kPairsPerChunk) {
        const int64_t c1 = std::min(p1, c0 + kPairsPerChunk);
        for (int64_t tile = tile0; tile < tile1; ++tile) {
            const int64_t row0 = tile * kGemmRows;
            const int rows = int(std::min<int64_t>(kGemmRows, n_rows - row0));
            pack_weight_tile(wt, offset_q8, w + size_t(row0) * rb, rb, rows, nb, &t);
            fn(t, x.packed, c0, c1, y, ldy, row0, rows);
        }
    }
}

// Splits row tiles over the pool's threads; when there are fewer tiles than threads (tiny
// matrices), spare threads take slices of the columns (tokens or token pairs) instead.
// fn(tile0, tile1, c0, c1) runs once per thread that has work.
template <typename Fn>
void split_tiles(ThreadPool& pool, int64_t n_rows, int64_t n_cols_work, const Fn& fn) {
    const int64_t n_tiles = (n_rows + kGemmRows - 1) / kGemmRows;
    const int nt = pool.n_threads();
    const int64_t rc = std::min<int64_t>(nt, n_tiles);
    const int64_t cc = std::max<int64_t>(1, std::min<int64_t>(nt / rc, n_cols_work));
    pool.run([&](int ti, int) {
        if (ti >= rc * cc) return;
        const int64_t ri = ti % rc, ci = ti / rc;
        fn(n_tiles * ri / rc, n_tiles * (ri + 1) / rc, n_cols_work * ci / cc, n_cols_work * (ci + 1) / cc);
    });
}

}  // namespace

uint8_t* thread_scratch(ScratchSlot slot, size_t bytes) {
    thread_local ScratchBuffers s;
    ScratchBuffers::Buf& b = s.bufs[slot];
    if (bytes > b.cap) {
        std::free(b.p);
        b.cap = (bytes + 63) / 64 * 64;
        b.p = static_cast<uint8_t*>(std::aligned_alloc(64, b.cap));
        STRATA_ASSERT(b.p != nullptr);
    }
    return b.p;
}

void matmul(DType wt, const uint8_t* w, size_t w_row_bytes, int64_t n_rows, const float* x, int64_t n_batch,
            int64_t n_cols, float* y, int64_t ldy, bool exact, ThreadPool& pool, Acts* scratch) {
    if (!exact && is_kquant(wt))  // llama.cpp's K-quant forms (kquant.h)
        return kq_matmul(wt, w, w_row_bytes, n_rows, x, n_batch, n_cols, y, ldy, pool, scratch);
    Acts& a = *scratch;
    bool offset_q8 = false;
    const GemmTileFn gemm = !exact && n_batch >= 2 ? gemm_tile_fn(wt, &offset_q8) : nullptr;
    const MatvecFn mv = !exact && n_batch == 1 ? matvec_fn(wt) : nullptr;
    // f32 mode: a (row, token) result depends on neither the batch size nor the token's
    // place in it, so chunked evaluation equals token-by-token decoding bit for bit (the KV
    // evaluation relies on it, cli perplexity --batch).
    const Isa isa = active_isa();
    const bool f32_kernels = exact && isa >= Isa::kAvx2 && dtype_info_checked(wt).can_dequantize;
    if (f32_kernels && isa >= Isa::kAvx512 && n_batch <= kF32DecodeMax) {
        // Chunks are multiples of the kernel's 4-row pass so only the last one has a tail.
        pool.parallel_for(n_rows, 16, [&](int64_t r0, int64_t r1) {
            avx512_f32_decode(wt, w, w_row_bytes, n_cols, x, n_batch, y, ldy, r0, r1);
        });
        return;
    }
    if (f32_kernels) {  // reads x directly
        const auto tile_fn = isa >= Isa::kAvx512 ? avx512_gemm_f32_tile : avx2_gemm_f32_tile;
        split_tiles(pool, n_rows, n_batch, [&](int64_t tile0, int64_t tile1, int64_t t0, int64_t t1) {
            float* wf = reinterpret_cast<float*>(thread_scratch(kScratchF32Tile, size_t(kGemmRows * n_cols) * sizeof(float)));
            // Token chunks outermost, as in gemm_range: a chunk's f32 activations stay in L2
            // while the row tiles pass; each tile is dequantized once per chunk.
            const int64_t chunk = std::max<int64_t>(6, (kF32ChunkBytes / (n_cols * 4)) / 6 * 6);
            for (int64_t c0 = t0; c0 < t1; c0 += chunk) {
                const int64_t c1 = std::min(t1, c0 + chunk);
                for (int64_t tile = tile0; tile < tile1; ++tile) {
                    const int64_t row0 = tile * kGemmRows;
                    const int rows = int(std::min<int64_t>(kGemmRows, n_rows - row0));
                    tile_fn(wt, w + size_t(row0) * w_row_bytes, w_row_bytes, rows, n_cols, wf, x, c0, c1, y, ldy, row0);
                }
            }
        });
        return;
    }
    size_acts(&a, wt, exact, n_batch, n_cols);  // the f32 kernels above read x directly
    if (gemm) size_packed_acts(&a);
    auto prep = [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
            quantize_act_row(x + t * n_cols, a.type, a.buf.data() + size_t(t) * a.row_bytes, n_cols);
        if (gemm) pack_acts(&a, t0, t1);
    };
    if (n_batch > 1 && n_batch * n_cols >= kParallelPrepValues) pool.parallel_for(n_batch, 1, prep);
    else prep(0, n_batch);

    if (mv) {
        // Chunks are multiples of the kernels' 4-row step so only the last one has a tail.
        pool.parallel_for(n_rows, 16, [&](int64_t r0, int64_t r1) {
            mv(n_cols, w, w_row_bytes, a.buf.data(), y, r0, r1);
        });
        return;
    }
    if (gemm) {
        split_tiles(pool, n_rows, a.packed.n_pairs, [&](int64_t tile0, int64_t tile1, int64_t p0, int64_t p1) {
            gemm_range(gemm, offset_q8, wt, w, w_row_bytes, n_rows, a, y, ldy, tile0, tile1, p0, p1);
        });
        return;
    }
    pool.parallel_for(n_rows, 16, [&](int64_t r0, int64_t r1) {
        gemm_rows(wt, w, w_row_bytes, a, y, ldy, r0, r1, exact);
    });
}

void matmul_shared_input(const MatmulOut* outs, int n_outs, const float* x, int64_t n_batch, int64_t n_cols,
                         bool exact, ThreadPool& pool, Acts* scratch) {
    const Isa isa = active_isa();
    bool f32_decode = exact && isa >= Isa::kAvx512 && n_batch <= kF32DecodeMax;
    bool q8_decode = !exact && n_batch == 1;
    for (int i = 0; i < n_outs; ++i) {
        f32_decode = f32_decode && dtype_info_checked(outs[i].wt).can_dequantize;
        q8_decode = q8_decode && matvec_fn(outs[i].wt) != nullptr &&
                    act_type_for(outs[i].wt, false) == act_type_for(outs[0].wt, false);
    }
    if (n_outs < 2 || (!f32_decode && !q8_decode)) {
        for (int i = 0; i < n_outs; ++i)
            matmul(outs[i].wt, outs[i].w, outs[i].w_row_bytes, outs[i].n_rows, x, n_batch, n_cols, outs[i].y,
                   outs[i].ldy, exact, pool, scratch);
        return;
    }
    if (q8_decode) {  // one quantized activation row serves every matrix
        size_acts(scratch, outs[0].wt, false, 1, n_cols);
        quantize_act_row(x, scratch->type, scratch->buf.data(), n_cols);
    }
    // Rows of all outputs in one index space, each output's start rounded up to the
    // 16-row grain so a chunk never starts inside another output's 4-row pass.
    int64_t start[8], total = 0;
    STRATA_ASSERT(n_outs <= 8);
    for (int i = 0; i < n_outs; ++i) {
        start[i] = total;
        total += (outs[i].n_rows + 15) / 16 * 16;
    }
    pool.parallel_for(total, 16, [&](int64_t r0, int64_t r1) {
        for (int i = 0; i < n_outs; ++i) {
            const MatmulOut& o = outs[i];
            const int64_t b = std::max(r0, start[i]) - start[i], e = std::min(r1 - start[i], o.n_rows);
            if (b >= e) continue;
            if (f32_decode) avx512_f32_decode(o.wt, o.w, o.w_row_bytes, n_cols, x, n_batch, o.y, o.ldy, b, e);
            else matvec_fn(o.wt)(n_cols, o.w, o.w_row_bytes, scratch->buf.data(), o.y, b, e);
        }
    });
}

}  // namespace strata::cpu

// Kernel lab (issue #3): times the CPU matmul kernels on SmolLM2-135M's shapes at every
// ISA level, and the register-tile variants side by side, against this machine's own
// streaming-read bandwidth. Families, each reported in the unit that bounds it:
//   bandwidth/t<N>         streaming read of 256 MiB by N pool threads (GB/s): the roof
//   pool_sync/t2           one empty ThreadPool round trip (each matmul pays one)
//   vecdot/<T>/<isa>       one row at a time over an L2-resident 576x576 matrix (GB/s)
//   matvec_hot/<T>/<isa>   the 4-row decode kernel, same L2-resident matrix (GB/s)
//   f32_hot/<T>/b<N>       the f32-mode AVX-512 decode kernel, same matrix, N tokens (GB/s)
//   matvec/<shape>/<isa>   batch-1 matmul() as decode runs it, weights cycled through
//                          copies bigger than L3 so they stream from DRAM (GB/s)
//   decode_model/<isa>     all 211 matmuls of one SmolLM2 token (97 MB, tokens/s, GB/s)
//   gemm/<shape>/<isa>/b<N> batched matmul() as prefill runs it (GOP/s, 2 ops per MAC)
//   tile/<T>/<kernel>/tp<k> one packed weight tile against 256 tokens, one thread: the
//                          micro-kernel alone (GOP/s); tp = token pairs per pass
//   prefill_model/<isa>/b<N> every matmul of an N-token prefill (tokens/s)
//   *_f32/...              the same in the f32-activation mode (matvec_f32, decode_model_f32,
//                          prefill_model_f32)
//   gemma/matvec/<shape>/<mode>/t<N>  batch-1 matmul() on Gemma 3 270M Q4_K_M's shapes and
//                          types (Q5_0, Q8_0, Q4_K, Q6_K; the 262144x640 Q8_0 head), cold
//   gemma/decode/<mode>/t<N>   every matmul of one Gemma token (18 layers + head, 246 MB)
//   gemma/gemm/<shape>/<mode>/b512/t<N>  one Gemma matrix against a 512-token prompt
//   gemma/prefill/<mode>/b<N>/t2  every layer matmul of an N-token Gemma prefill
// Run: build/bench/kernels_bench --benchmark_filter=decode_model  (see --help). The
// machine is shared: use --benchmark_repetitions=5 and read the medians.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "tensor/cpu/kernels.h"
#include "tensor/cpu/simd.h"

namespace strata::cpu {
namespace {

constexpr size_t kColdBytes = size_t(128) << 20;  // 4x this machine's L3: weights come from DRAM

// Random weights with sane f16 scales (values do not matter for timing, NaNs would).
std::vector<uint8_t> random_weights(DType t, int64_t rows, int64_t cols, uint64_t seed) {
    const auto info = dtype_info_checked(t);
    std::vector<uint8_t> w(size_t(rows) * dtype_row_bytes(t, uint64_t(cols)));
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i + 8 <= w.size(); i += 8) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        std::memcpy(&w[i], &s, 8);
    }
    const uint16_t scale = fp32_to_fp16(0.01f);
    for (size_t b = 0; b < w.size() / info.block_bytes; ++b) {
        uint8_t* blk = w.data() + b * info.block_bytes;
        std::memcpy(blk + (t == DType::Q6_K ? 208 : 0), &scale, 2);  // Q6_K keeps d last
        if (t == DType::Q4_1 || t == DType::Q5_1 || t == DType::Q4_K || t == DType::Q5_K) std::memcpy(blk + 2, &scale, 2);
    }
    return w;
}

std::vector<float> random_acts(int64_t n, uint64_t seed) {
    std::vector<float> x(static_cast<size_t>(n));
    uint64_t s = seed + 12345;
    for (auto& v : x) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        v = float(int64_t(s >> 40) % 2001 - 1000) / 300.f;
    }
    return x;
}

struct Shape {
    const char* name;
    DType type;
    int64_t rows, cols;
};
// SmolLM2-135M-Instruct Q4_1: per layer q, k, v, o, gate, up, down; the tied Q8_0 head.
const Shape kShapes[] = {{"q_o", DType::Q4_1, 576, 576},    {"k_v", DType::Q4_1, 192, 576},
                         {"gate_up", DType::Q4_1, 1536, 576}, {"down", DType::Q4_1, 576, 1536},
                         {"head", DType::Q8_0, 49152, 576}};
constexpr int kLayers = 30;

ThreadPool& pool(int n) {
    static ThreadPool p1(1), p2(2);
    return n == 1 ? p1 : p2;
}

// Enough copies of one matrix to exceed the caches; benchmarks cycle through them.
struct ColdWeights {
    std::vector<std::vector<uint8_t>> copies;
    ColdWeights(const Shape& s) {
        const size_t bytes = size_t(s.rows) * dtype_row_bytes(s.type, uint64_t(s.cols));
        const size_t n = std::max<size_t>(1, (kColdBytes + bytes - 1) / bytes);
        for (size_t i = 0; i < n; ++i) copies.push_back(random_weights(s.type, s.rows, s.cols, i));
    }
};

void set_isa(benchmark::State& st, Isa isa) {
    force_isa(isa);
    st.SetLabel(isa_name(active_isa()));
}

void BM_bandwidth(benchmark::State& st, int threads) {
    static std::vector<uint64_t> buf((size_t(256) << 20) / 8, 1);
    std::vector<uint64_t> sink(8);
    for (auto _ : st) {
        pool(threads).run([&](int ti, int nt) {
            const size_t b = buf.size() * size_t(ti) / size_t(nt), e = buf.size() * size_t(ti + 1) / size_t(nt);
            uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
            for (size_t i = b; i + 8 <= e; i += 8)
                a0 += buf[i], a1 += buf[i + 1], a2 += buf[i + 2], a3 += buf[i + 3], a4 += buf[i + 4],
                    a5 += buf[i + 5], a6 += buf[i + 6], a7 += buf[i + 7];
            sink[size_t(ti)] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
        });
        benchmark::DoNotOptimize(sink.data());
    }
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(buf.size() * 8));
}

// The f32-mode decode kernel on the same L2-resident matrix, one thread: its compute rate
// with memory out of the way (compare matvec_hot).
void BM_f32_hot(benchmark::State& st, DType t, int64_t batch) {
    const int64_t rows = 576, cols = dtype_info_checked(t).block_size == 256 ? 768 : 576;
    const auto w = random_weights(t, rows, cols, 1);
    const auto x = random_acts(cols * batch, 2);
    const size_t rb = dtype_row_bytes(t, uint64_t(cols));
    std::vector<float> y(static_cast<size_t>(rows * batch));
    if (detected_isa() < Isa::kAvx512) return st.SkipWithError("no AVX-512");
    for (auto _ : st) {
        avx512_f32_decode(t, w.data(), rb, cols, x.data(), batch, y.data(), rows, 0, rows);
        benchmark::DoNotOptimize(y.data());
    }
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(w.size()));
}

// One empty ThreadPool round trip: the fixed cost each multi-threaded matmul pays.
void BM_pool_sync(benchmark::State& st) {
    std::vector<int> sink(8);
    for (auto _ : st) pool(2).run([&](int ti, int) { sink[size_t(ti)]++; });
    benchmark::DoNotOptimize(sink.data());
}

// Single-row vec-dots, or the 4-row matvec (hot: one 576x576 matrix, L2-resident).
void BM_rows_hot(benchmark::State& st, DType t, Isa isa, bool matvec) {
    set_isa(st, isa);
    const int64_t rows = 576, cols = 576;
    const auto w = random_weights(t, rows, cols, 1);
    const auto x = random_acts(cols, 2);
    Acts a;
    prepare_acts(x.data(), 1, cols, t, false, &a);
    const size_t rb = dtype_row_bytes(t, uint64_t(cols));
    std::vector<float> y(static_cast<size_t>(rows));
    const VecDotFn dot = vec_dot_fn(t, false);
    const MatvecFn mv = matvec_fn(t);
    if (matvec && !mv) return st.SkipWithError("no matvec at this level");
    for (auto _ : st) {
        if (matvec) mv(cols, w.data(), rb, a.buf.data(), y.data(), 0, rows);
        else
            for (int64_t r = 0; r < rows; ++r) y[size_t(r)] = dot(cols, w.data() + size_t(r) * rb, a.buf.data());
        benchmark::DoNotOptimize(y.data());
    }
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(w.size()));
    force_isa(detected_isa());
}

void BM_matmul(benchmark::State& st, const Shape& s, Isa isa, int64_t batch, int threads, bool f32) {
    set_isa(st, isa);
    static std::vector<std::pair<const Shape*, ColdWeights*>> cache;  // shared across runs
    ColdWeights* cw = nullptr;
    for (auto& [sh, c] : cache)
        if (sh == &s) cw = c;
    if (!cw) cache.emplace_back(&s, cw = new ColdWeights(s));
    const auto x = random_acts(batch * s.cols, 3);
    std::vector<float> y(size_t(batch * s.rows));
    Acts scratch;
    const size_t rb = dtype_row_bytes(s.type, uint64_t(s.cols));
    size_t i = 0;
    for (auto _ : st) {
        const auto& w = cw->copies[i++ % cw->copies.size()];
        matmul(s.type, w.data(), rb, s.rows, x.data(), batch, s.cols, y.data(), s.rows, f32, pool(threads), &scratch);
        benchmark::DoNotOptimize(y.data());
    }
    const double it = double(st.iterations());
    st.SetBytesProcessed(int64_t(it * double(rb) * double(s.rows)));
    st.counters["GOP/s"] = benchmark::Counter(it * 2.0 * double(s.rows * s.cols * batch), benchmark::Counter::kIsRate);
    force_isa(detected_isa());
}

// The whole model's matmuls for one step of `batch` tokens (head: last token only).
struct Model {
    std::vector<std::vector<uint8_t>> w;  // per layer 7 matrices, then the head
    Model() {
        uint64_t seed = 100;
        for (int l = 0; l < kLayers; ++l)
            for (int k : {0, 1, 1, 0, 2, 2, 3}) w.push_back(random_weights(kShapes[k].type, kShapes[k].rows, kShapes[k].cols, seed++));
        w.push_back(random_weights(kShapes[4].type, kShapes[4].rows, kShapes[4].cols, seed));
    }
    size_t bytes() const {
        size_t b = 0;
        for (const auto& m : w) b += m.size();
        return b;
    }
};

void BM_model(benchmark::State& st, Isa isa, int64_t batch, int threads, bool f32) {
    set_isa(st, isa);
    static Model model;
    const Shape* order[7] = {&kShapes[0], &kShapes[1], &kShapes[1], &kShapes[0], &kShapes[2], &kShapes[2], &kShapes[3]};
    const auto x = random_acts(batch * 1536, 4);
    std::vector<float> y(size_t(batch) * 49152);
    Acts scratch;
    for (auto _ : st) {
        size_t m = 0;
        for (int l = 0; l < kLayers; ++l)
            for (const Shape* s : order) {
                matmul(s->type, model.w[m++].data(), dtype_row_bytes(s->type, uint64_t(s->cols)), s->rows, x.data(), batch,
                       s->cols, y.data(), s->rows, f32, pool(threads), &scratch);
            }
        const Shape& h = kShapes[4];
        matmul(h.type, model.w[m].data(), dtype_row_bytes(h.type, uint64_t(h.cols)), h.rows, x.data(), 1, h.cols, y.data(),
               h.rows, f32, pool(threads), &scratch);
        benchmark::DoNotOptimize(y.data());
    }
    st.SetItemsProcessed(int64_t(st.iterations()) * batch);  // tokens/s
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(model.bytes()));
    force_isa(detected_isa());
}

// One packed weight tile against 256 tokens, one thread: micro-kernel throughput.
void BM_tile(benchmark::State& st, DType t, GemmTileFn fn, bool offset_q8) {
    if (!fn) return st.SkipWithError("variant not available");
    const int64_t cols = 1536, tokens = 256, nb = cols / 32;
    const auto w = random_weights(t, kGemmRows, cols, 5);
    const auto x = random_acts(tokens * cols, 6);
    Acts a;
    prepare_acts(x.data(), tokens, cols, t, false, &a);
    size_packed_acts(&a);
    pack_acts(&a, 0, tokens);
    std::vector<uint8_t> mem(size_t(nb) * kGemmRows * (32 + 8) + 64);
    PackedTile tile;
    tile.codes = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(mem.data()) + 63) & ~uintptr_t(63));
    tile.d = reinterpret_cast<float*>(tile.codes + nb * kGemmRows * 32);
    tile.m = tile.d + nb * kGemmRows;
    pack_weight_tile(t, offset_q8, w.data(), dtype_row_bytes(t, uint64_t(cols)), kGemmRows, nb, &tile);
    std::vector<float> y(size_t(tokens) * kGemmRows);
    for (auto _ : st) {
        fn(tile, a.packed, 0, a.packed.n_pairs, y.data(), kGemmRows, 0, kGemmRows);
        benchmark::DoNotOptimize(y.data());
    }
    st.counters["GOP/s"] =
        benchmark::Counter(double(st.iterations()) * 2.0 * double(kGemmRows * cols * tokens), benchmark::Counter::kIsRate);
}

// ---- Gemma 3 270M Q4_K_M (issue: K-quants) ----------------------------------------------
// Per layer: q 1024x640 Q5_0, k 256x640 Q5_0, v 256x640 (Q8_0 or Q5_0), o 640x1024 Q4_K,
// gate/up 2048x640 Q5_0, down 640x2048 (Q6_K where v is Q8_0, else Q4_K); the tied head
// 262144x640 Q8_0. Layer types as in models/gemma-3-270m-q4_k_m.gguf.
const Shape kGemma[] = {{"q", DType::Q5_0, 1024, 640},      {"k_v5", DType::Q5_0, 256, 640},
                        {"v8", DType::Q8_0, 256, 640},      {"o", DType::Q4_K, 640, 1024},
                        {"gate_up", DType::Q5_0, 2048, 640}, {"down4", DType::Q4_K, 640, 2048},
                        {"down6", DType::Q6_K, 640, 2048},   {"head", DType::Q8_0, 262144, 640}};
constexpr const char* kGemmaV8 = "885585585585585888";  // per layer: 8 -> v Q8_0 and down Q6_K

struct GemmaModel {
    std::vector<std::vector<const Shape*>> layers;
    std::vector<std::vector<uint8_t>> w;  // in call order, then the head
    size_t bytes = 0;
    GemmaModel() {
        uint64_t seed = 300;
        for (int l = 0; l < 18; ++l) {
            const bool v8 = kGemmaV8[l] == '8';
            std::vector<const Shape*> m = {&kGemma[0], &kGemma[1], v8 ? &kGemma[2] : &kGemma[1], &kGemma[3],
                                           &kGemma[4], &kGemma[4], v8 ? &kGemma[6] : &kGemma[5]};
            for (const Shape* s : m) w.push_back(random_weights(s->type, s->rows, s->cols, seed++));
            layers.push_back(m);
        }
        w.push_back(random_weights(kGemma[7].type, kGemma[7].rows, kGemma[7].cols, seed));
        for (const auto& m : w) bytes += m.size();
    }
};

void BM_gemma(benchmark::State& st, Isa isa, int64_t batch, int threads, bool f32) {
    set_isa(st, isa);
    static GemmaModel model;
    const auto x = random_acts(batch * 2048, 7);
    std::vector<float> y(size_t(std::max<int64_t>(batch * 2048, 262144)));
    Acts scratch;
    for (auto _ : st) {
        size_t m = 0;
        for (const auto& layer : model.layers)
            for (const Shape* s : layer)
                matmul(s->type, model.w[m++].data(), dtype_row_bytes(s->type, uint64_t(s->cols)), s->rows, x.data(), batch,
                       s->cols, y.data(), s->rows, f32, pool(threads), &scratch);
        if (batch == 1) {  // prefill computes logits of the last token only, and not here
            const Shape& h = kGemma[7];
            matmul(h.type, model.w[m].data(), dtype_row_bytes(h.type, uint64_t(h.cols)), h.rows, x.data(), 1, h.cols,
                   y.data(), h.rows, f32, pool(threads), &scratch);
        }
        benchmark::DoNotOptimize(y.data());
    }
    st.SetItemsProcessed(int64_t(st.iterations()) * batch);  // tokens/s
    if (batch == 1) st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(model.bytes));
    force_isa(detected_isa());
}

void register_gemma() {
    using benchmark::RegisterBenchmark;
    std::vector<Isa> isas = {detected_isa()};
    if (detected_isa() > Isa::kAvx2) isas.push_back(Isa::kAvx2);
    for (bool f32 : {false, true}) {
        const std::string mode = f32 ? "f32" : "q8";
        for (Isa isa : isas) {
            const std::string where = mode + "/" + isa_name(isa);
            for (const Shape& s : kGemma)
                for (int th : {1, 2})
                    RegisterBenchmark(("gemma/matvec/" + std::string(s.name) + "/" + where + "/t" + std::to_string(th)).c_str(),
                                      BM_matmul, s, isa, int64_t(1), th, f32)
                        ->UseRealTime();
            for (int th : {1, 2})
                RegisterBenchmark(("gemma/decode/" + where + "/t" + std::to_string(th)).c_str(), BM_gemma, isa, int64_t(1),
                                  th, f32)
                    ->UseRealTime();
            for (const Shape& s : kGemma)
                for (int th : {1, 2})
                    if (std::string(s.name) != "head")
                        RegisterBenchmark(("gemma/gemm/" + std::string(s.name) + "/" + where + "/b512/t" + std::to_string(th)).c_str(),
                                          BM_matmul, s, isa, int64_t(512), th, f32)
                            ->UseRealTime();
            for (int64_t b : {8, 64, 512})
                RegisterBenchmark(("gemma/prefill/" + where + "/b" + std::to_string(b) + "/t2").c_str(), BM_gemma, isa, b, 2,
                                  f32)
                    ->UseRealTime();
        }
    }
}

std::vector<Isa> levels() {
    std::vector<Isa> v;
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni})
        if (int(isa) <= int(detected_isa())) v.push_back(isa);
    return v;
}

void register_all() {
    using benchmark::RegisterBenchmark;
    for (int t : {1, 2}) RegisterBenchmark(("bandwidth/t" + std::to_string(t)).c_str(), BM_bandwidth, t)->UseRealTime();
    RegisterBenchmark("pool_sync/t2", BM_pool_sync)->UseRealTime();
    const DType quant[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0};
    for (DType t : quant)
        for (Isa isa : levels()) {
            const std::string suffix = std::string(dtype_name(t)) + "/" + isa_name(isa);
            RegisterBenchmark(("vecdot/" + suffix).c_str(), BM_rows_hot, t, isa, false)->UseRealTime();
            if (isa != Isa::kScalar)
                RegisterBenchmark(("matvec_hot/" + suffix).c_str(), BM_rows_hot, t, isa, true)->UseRealTime();
        }
    for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K})
        for (int64_t b : {1, 2, 4, 8})
            RegisterBenchmark(("f32_hot/" + std::string(dtype_name(t)) + "/b" + std::to_string(b)).c_str(), BM_f32_hot, t, b)
                ->UseRealTime();
    for (const Shape& s : kShapes)
        for (Isa isa : levels())
            for (int th : {1, 2})
                RegisterBenchmark(("matvec/" + std::string(s.name) + "/" + isa_name(isa) + "/t" + std::to_string(th)).c_str(),
                                  BM_matmul, s, isa, int64_t(1), th, false)
                    ->UseRealTime();
    for (const Shape& s : kShapes)
        for (Isa isa : levels())
            RegisterBenchmark(("matvec_f32/" + std::string(s.name) + "/" + isa_name(isa) + "/t2").c_str(), BM_matmul, s, isa,
                              int64_t(1), 2, true)
                ->UseRealTime();
    for (Isa isa : levels())
        for (int th : {1, 2}) {
            RegisterBenchmark(("decode_model/" + std::string(isa_name(isa)) + "/t" + std::to_string(th)).c_str(), BM_model,
                              isa, int64_t(1), th, false)
                ->UseRealTime();
            RegisterBenchmark(("decode_model_f32/" + std::string(isa_name(isa)) + "/t" + std::to_string(th)).c_str(),
                              BM_model, isa, int64_t(1), th, true)
                ->UseRealTime();
        }
    for (const Shape& s : kShapes) {
        if (std::string(s.name) == "head") continue;  // prefill computes logits of the last token only
        for (Isa isa : levels())
            for (int64_t b : {2, 7, 64, 256})
                RegisterBenchmark(
                    ("gemm/" + std::string(s.name) + "/" + isa_name(isa) + "/b" + std::to_string(b) + "/t2").c_str(),
                    BM_matmul, s, isa, b, 2, false)
                    ->UseRealTime();
    }
    for (DType t : quant) {
        const std::string ts(dtype_name(t));
        for (int tp : {1, 2})
            RegisterBenchmark(("tile/" + ts + "/avx2/tp" + std::to_string(tp)).c_str(), BM_tile, t,
                              detected_isa() >= Isa::kAvx2 ? avx2_gemm_tile(t, tp) : nullptr, false);
        for (int tp : {1, 2, 3, 4}) {
            RegisterBenchmark(("tile/" + ts + "/avx512/tp" + std::to_string(tp)).c_str(), BM_tile, t,
                              detected_isa() >= Isa::kAvx512 ? avx512_gemm_tile(t, false, tp) : nullptr, false);
            RegisterBenchmark(("tile/" + ts + "/avx512vnni/tp" + std::to_string(tp)).c_str(), BM_tile, t,
                              detected_isa() >= Isa::kAvx512Vnni ? avx512_gemm_tile(t, true, tp) : nullptr, true);
        }
    }
    for (Isa isa : levels())
        for (int64_t b : {16, 64, 256})
            for (int th : {1, 2})
                RegisterBenchmark(("prefill_model/" + std::string(isa_name(isa)) + "/b" + std::to_string(b) + "/t" +
                                   std::to_string(th))
                                      .c_str(),
                                  BM_model, isa, b, th, false)
                    ->UseRealTime();
    for (Isa isa : levels())
        for (int64_t b : {4, 8, 64, 256})
            RegisterBenchmark(("prefill_model_f32/" + std::string(isa_name(isa)) + "/b" + std::to_string(b) + "/t2").c_str(),
                              BM_model, isa, b, 2, true)
                ->UseRealTime();
}

}  // namespace
}  // namespace strata::cpu

int main(int argc, char** argv) {
    strata::cpu::register_all();
    strata::cpu::register_gemma();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

// Kernel lab for the KV cache (issue #4, spec §6.3 metric 6 and §7.3): attention alone,
// per decode step and layer, for each cache format at each ISA level, and the tile flush
// (VarN + RTN + packing) per tile. SmolLM2-135M shape: 30 layers, 9 query heads, 3 KV
// heads, head_dim 64. Families:
//   kv_attend/<format>/<isa>/L<L>/t<T>  one decode query attending all 30 layers of one
//        sequence holding L random tokens (the whole cache streams: 30 layers of fp16 at
//        L = 8192 are 189 MB), T pool threads. Reported per layer: us_per_layer, and the
//        rates of the whole step: GB/s of cache bytes held (what a bandwidth-bound kernel
//        must read) and GFLOP/s counting 4·D flops per (cached token, query head):
//        2·D for q·k and 2·D for p·v (spec §7.3).
//   kv_flush/<format>            one tile of G = 128 tokens of one KV head (K and V
//        together): us_per_tile. A decode step amortizes 30·3/128 tiles per sequence.
// Run: build/bench/kv_bench --benchmark_filter='kv_attend/.*/L8192' --benchmark_repetitions=5
// The machine is shared: read medians and run the formats being compared in one process.
#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kv/kv_cache.h"
#include "kv/tile_cache.h"
#include "kv/tile_format.h"
#include "tensor/cpu/simd.h"

namespace strata::kv {
namespace {

constexpr int kLayers = 30, kHeads = 9, kHeadsKv = 3, kDim = 64;

ThreadPool& pool(int n) {
    static ThreadPool p1(1), p2(2);
    return n == 1 ? p1 : p2;
}

// One sequence of L random tokens per format, built once and reused across ISA levels.
KvCache& cache_for(const std::string& format, int64_t L) {
    static std::map<std::pair<std::string, int64_t>, std::unique_ptr<KvCache>> caches;
    auto& c = caches[{format, L}];
    if (!c) {
        caches.clear();  // keep one resident: 30 layers of fp16 at L = 8192 are 189 MB
        auto& slot = caches[{format, L}];
        const CacheShape s{kLayers, kHeads, kHeadsKv, kDim, L + 8};
        slot = std::move(*KvCache::create(KvSpec{format, format}, s));
        std::mt19937 rng(1);
        std::normal_distribution<float> nd;
        const int64_t chunk = 256, kv = kHeadsKv * kDim;
        std::vector<float> k(size_t(chunk * kv)), v(k.size());
        for (int64_t done = 0; done < L; done += chunk) {
            const int64_t m = std::min(chunk, L - done);
            for (int l = 0; l < kLayers; ++l) {
                for (size_t i = 0; i < size_t(m * kv); ++i) k[i] = nd(rng), v[i] = nd(rng);
                (void)slot->layer(l).append(k.data(), v.data(), m);
            }
        }
        // One more token flushes the pending tile, as the first decode step would.
        for (int l = 0; l < kLayers; ++l) (void)slot->layer(l).append(k.data(), v.data(), 1);
        return *slot;
    }
    return *c;
}

void BM_attend(benchmark::State& st, std::string format, cpu::Isa isa, int64_t L, int threads) {
    cpu::force_isa(isa);
    st.SetLabel(cpu::isa_name(cpu::active_isa()));
    KvCache& c = cache_for(format, L);
    std::vector<float> q(size_t(kHeads * kDim)), out(q.size());
    std::mt19937 rng(2);
    std::normal_distribution<float> nd;
    for (auto& x : q) x = nd(rng);
    const AttendOpts o{threads > 1 ? &pool(threads) : nullptr, false};
    for (auto _ : st)
        for (int l = 0; l < kLayers; ++l) {
            c.layer(l).attend(q.data(), 1, out.data(), o);
            benchmark::DoNotOptimize(out.data());
        }
    const double steps = double(st.iterations());
    const double n_tok = double(c.layer(0).n_tokens());
    st.counters["us_per_layer"] = benchmark::Counter(steps * kLayers / 1e6, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    st.counters["GB/s"] = benchmark::Counter(steps * double(c.bytes()) / 1e9, benchmark::Counter::kIsRate);
    st.counters["GFLOP/s"] = benchmark::Counter(steps * kLayers * n_tok * kHeads * 4.0 * kDim / 1e9, benchmark::Counter::kIsRate);
    cpu::force_isa(cpu::detected_isa());
}

void BM_flush(benchmark::State& st, std::string format) {
    auto m = make_kv_method(format);
    const TileConfig& tc = static_cast<const TileMethod&>(**m).config();
    const TileLayout lay = tile_layout(tc, kDim);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd;
    std::vector<float> k(size_t(tc.tile * kDim)), v(k.size());
    for (auto& x : k) x = nd(rng);
    for (auto& x : v) x = nd(rng);
    std::vector<uint8_t> rec(lay.total);
    for (auto _ : st) {
        encode_tile(tc, lay, k.data(), v.data(), rec.data());
        benchmark::DoNotOptimize(rec.data());
    }
    st.counters["us_per_tile"] = benchmark::Counter(double(st.iterations()) / 1e6, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void register_all() {
    const char* formats[] = {"fp16", "q8_0", "q4_0", "kivi2", "kivi4", "kvarn_k4v2", "kvarn_k2v2", "kvarn_k3v3", "kvarn_k4v4"};
    for (int64_t L : {1024, 4096, 8192})
        for (const char* f : formats)
            for (cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512})
                for (int t : {1, 2}) {
                    if (isa > cpu::detected_isa()) continue;
                    const std::string name = std::string("kv_attend/") + f + "/" + cpu::isa_name(isa) + "/L" +
                                             std::to_string(L) + "/t" + std::to_string(t);
                    benchmark::RegisterBenchmark(name.c_str(), BM_attend, std::string(f), isa, L, t)
                        ->Unit(benchmark::kMillisecond)
                        ->UseRealTime();
                }
    for (const char* f : {"kivi2", "kvarn_k4v2", "kvarn_k2v2", "kvarn_k3v3", "kvarn_k4v4"})
        benchmark::RegisterBenchmark((std::string("kv_flush/") + f).c_str(), BM_flush, std::string(f))
            ->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace strata::kv

int main(int argc, char** argv) {
    strata::kv::register_all();
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

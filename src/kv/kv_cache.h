// The KV cache subsystem's public face. A LayerCache holds one (sequence, layer): it
// takes post-RoPE K and V for all KV heads a few tokens at a time and answers attention
// for the newest queries directly from its encoded pages (no full-precision copy of the
// cache is made per step). A Method is a named plug-in (fp16, q8_0, kvarn_k4v2, ...) that
// checks a head size and builds LayerCaches; registry.cpp lists them. KvCache bundles the
// per-layer caches of one sequence plus the byte budget they allocate from.
// Encoders and fused kernels live in codecs/; the two storage schemes they plug into are
// row_cache.h (per-token formats) and tile_cache.h (sink / quantized tiles / FP tail).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "kv/page_pool.h"

namespace strata::kv {

struct CacheShape {
    int n_layer = 0;
    int n_head = 0;     // query heads
    int n_head_kv = 0;  // KV heads; n_head % n_head_kv == 0
    int head_dim = 0;
    int64_t n_ctx = 0;  // most tokens a sequence may hold
};

struct AttendOpts {
    ThreadPool* pool = nullptr;  // null = run on the calling thread
    // Model compute mode. Only fp16 reads it: off = llama.cpp's f16 attention arithmetic
    // bit for bit; on = f32 arithmetic with libm exp. Every other format always computes
    // in f32 (libm exp) on its own encoding.
    bool exact = false;
    // 8-bit mode only (exact == false), fp16 only: which of llama.cpp's two attention
    // computations to reproduce. flash = its flash-attention op (llama.cpp's CPU default,
    // `-fa auto`); otherwise the separate KQ / softmax / KQV ops (`-fa off`). llama.cpp
    // splits a one-token flash attention over 512+ cells into n_threads key chunks, so
    // n_threads must be its thread count for the results to match.
    bool flash = false;
    int n_threads = 1;
    // Which keys a query sees and how scores are scaled: the layer's attention spec, the
    // same for every format (visible_keys below is the one place the range is computed).
    bool causal = true;   // false: every cached key (bidirectional, LLaDA)
    int64_t window = 0;   // > 0: a query at position p sees keys p - window < j (sliding window)
    float scale = 0;      // score multiplier; 0 = 1/sqrt(head_dim)
};

// Keys [first, end) visible to row i of the n newest queries in a cache of n_cached
// tokens (the queries sit at positions n_cached - n + i).
struct KeySpan {
    int64_t first = 0, end = 0;
};
inline KeySpan visible_keys(const AttendOpts& o, int64_t n_cached, int64_t n, int64_t i) {
    const int64_t pos = n_cached - n + i;
    KeySpan s;
    s.end = o.causal ? pos + 1 : n_cached;
    s.first = o.window > 0 ? (pos - o.window + 1 > 0 ? pos - o.window + 1 : 0) : 0;
    return s;
}
inline float score_scale(const AttendOpts& o, int head_dim) {
    return o.scale != 0 ? o.scale : 1.0f / std::sqrt(float(head_dim));
}

class LayerCache {
public:
    virtual ~LayerCache() = default;
    // k, v: [n][n_head_kv * head_dim], post-RoPE keys and values in the model frame.
    virtual Status append(const float* k, const float* v, int64_t n) = 0;
    // q: [n][n_head * head_dim] for the n newest tokens (positions n_tokens()-n ..), each
    // attending to visible_keys(o, ...); out: same shape. Scores use score_scale(o, D).
    virtual void attend(const float* q, int64_t n, float* out, const AttendOpts& o) const = 0;
    // Keeps positions < n. Formats that cannot cut inside an encoded tile move the kept part
    // of that tile back to their FP tail as decoded values.
    virtual void truncate(int64_t n) = 0;
    virtual int64_t n_tokens() const = 0;
    // Bytes this cache holds from the allocator: pages, FP sink/tail buffers, metadata.
    virtual size_t bytes() const = 0;
    // For tests: K and V as attention sees them, model frame, [n_tokens][n_head_kv*head_dim].
    virtual void decode(std::vector<float>& k, std::vector<float>& v) const = 0;
};

class RowCodec;

class Method {
public:
    virtual ~Method() = default;
    virtual std::string_view name() const = 0;
    virtual std::string_view summary() const = 0;
    // A clear error for a shape the format cannot store (head size, GQA ratio).
    virtual Status check(const CacheShape& s) const = 0;
    virtual Result<std::unique_ptr<LayerCache>> make_layer(const CacheShape& s, int layer,
                                                           ByteBudget& budget) const = 0;
    // Per-token formats expose their row codec so K and V may use different ones
    // (--kv-k / --kv-v); formats that encode K and V together return null.
    virtual std::unique_ptr<RowCodec> row_codec(int head_dim) const;
};

// Names in help order, and lookup. The error for an unknown name lists the known ones.
std::vector<std::string> kv_method_names();
Result<std::unique_ptr<Method>> make_kv_method(std::string_view name);

struct KvSpec {
    std::string k = "fp16", v = "fp16";  // same name = one method for both
};

// One sequence's cache over all layers.
class KvCache {
public:
    static Result<std::unique_ptr<KvCache>> create(const KvSpec& spec, const CacheShape& shape,
                                                   size_t budget_bytes = SIZE_MAX);
    LayerCache& layer(int l) { return *layers_[size_t(l)]; }
    const LayerCache& layer(int l) const { return *layers_[size_t(l)]; }
    int n_layer() const { return int(layers_.size()); }
    void truncate(int64_t n);
    size_t bytes() const;
    const ByteBudget& budget() const { return *budget_; }

private:
    std::unique_ptr<ByteBudget> budget_;
    std::vector<std::unique_ptr<LayerCache>> layers_;
};

}  // namespace strata::kv

// Context: one sequence's state (KV cache, scratch) and the CPU forward pass of the
// shared pre-norm decoder block (RMSNorm -> GQA attention with RoPE -> RMSNorm -> SwiGLU).
// eval() appends tokens at positions n_past.. and returns logits; prefill and decode are
// the same call with n_tokens > 1 or == 1.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "kv/kv_cache.h"
#include "model/hooks.h"
#include "model/model.h"
#include "tensor/cpu/kernels.h"

namespace strata::model {

struct ContextParams {
    int64_t n_ctx = 0;     // 0 = the model's training context
    int n_threads = 2;
    bool exact = false;    // f32 activations and dequantized weights (reference path)
    // 8-bit mode with the fp16 cache: reproduce llama.cpp's flash-attention op (its CPU
    // default) rather than its separate KQ / softmax / KQV ops (kv::AttendOpts::flash).
    bool flash_attn = true;
    // KV cache format per tensor (kv/registry.cpp lists the names); fp16 is llama.cpp's
    // default and keeps its arithmetic bit for bit.
    kv::KvSpec kv;
    size_t kv_budget_bytes = SIZE_MAX;  // allocation limit for the whole cache
    ThreadPool* pool = nullptr;  // shared pool (e.g. server slots); null = own n_threads pool
};

class Context;

// One sequence's share of a batched step (Context::eval_batch).
struct BatchItem {
    Context* ctx = nullptr;
    std::span<const int32_t> tokens;
    bool all_logits = false;
    std::span<const float> logits;  // out: as Context::eval returns
};

class Context {
public:
    static Result<std::unique_ptr<Context>> create(const Model& model, ContextParams params);

    // Runs tokens at positions n_past() ... Returns logits for the last token (n_vocab),
    // or for every token when all_logits (n_tokens * n_vocab, row-major).
    Result<std::span<const float>> eval(std::span<const int32_t> tokens, bool all_logits = false);

    // A whole sequence from an empty cache with logits at every position: the forward a
    // masked-diffusion decoding step needs (bidirectional models, e.g. LLaDA, see every
    // position; causal models see the prefix). Forgets what was cached before.
    Result<std::span<const float>> eval_full(std::span<const int32_t> tokens) {
        truncate(0);
        return eval(tokens, /*all_logits=*/true);
    }

    // Evaluates several sequences (distinct contexts of one model, same numerics mode) in
    // one pass: every matmul sees all their rows at once, so weights are read once per
    // step for the whole batch; RoPE positions, KV caches, attention and hooks stay per
    // sequence. Scratch and the thread pool of items[0].ctx are used.
    static Status eval_batch(std::span<BatchItem> items);

    int64_t n_past() const { return n_past_; }
    int64_t n_ctx() const { return params_.n_ctx; }
    // Benchmarks only: appends n positions of random unit-normal K and V to every layer's
    // cache (no model compute), so decode speed at depth can be measured without paying
    // for a long prefill. Advances n_past.
    Status append_synthetic_kv(int64_t n, uint64_t seed);
    // Forgets cached positions >= n (n <= n_past).
    void truncate(int64_t n);
    const kv::KvCache& kv_cache() const { return *kv_; }
    void add_hook(LayerHook* hook) { hooks_.push_back(hook); }
    void add_matmul_hook(MatmulHook* hook) { matmul_hooks_.push_back(hook); }
    void add_attention_hook(AttentionHook* hook) { attention_hooks_.push_back(hook); }
    void clear_hooks() {
        hooks_.clear();
        matmul_hooks_.clear();
        attention_hooks_.clear();
    }
    const Model& model() const { return model_; }
    ThreadPool& pool() { return *pool_; }

private:
    Context(const Model& m, ContextParams p);

    const Model& model_;
    ContextParams params_;
    std::unique_ptr<ThreadPool> own_pool_;
    ThreadPool* pool_ = nullptr;
    int64_t n_past_ = 0;
    std::unique_ptr<kv::KvCache> kv_;  // per layer: post-RoPE K and V in the chosen format
    std::vector<LayerHook*> hooks_;
    std::vector<MatmulHook*> matmul_hooks_;
    std::vector<AttentionHook*> attention_hooks_;
    cpu::Acts acts_;
    std::vector<float> logits_;
    std::vector<float> logits_batch_;  // stacked logits of a batched step
    // scratch
    std::vector<float> x_, h_, q_, k_, v_, att_, g_, u_;
};

}  // namespace strata::model

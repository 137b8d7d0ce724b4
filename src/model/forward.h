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
#include "model/hooks.h"
#include "model/model.h"
#include "tensor/cpu/kernels.h"

namespace strata::model {

struct ContextParams {
    int64_t n_ctx = 0;     // 0 = the model's training context
    int n_threads = 2;
    bool exact = false;    // f32 activations and dequantized weights (reference path)
    bool kv_f16 = true;    // store K/V as f16 (llama.cpp's default); f32 otherwise
};

class Context {
public:
    static Result<std::unique_ptr<Context>> create(const Model& model, ContextParams params);

    // Runs tokens at positions n_past() ... Returns logits for the last token (n_vocab),
    // or for every token when all_logits (n_tokens * n_vocab, row-major).
    Result<std::span<const float>> eval(std::span<const int32_t> tokens, bool all_logits = false);

    int64_t n_past() const { return n_past_; }
    int64_t n_ctx() const { return params_.n_ctx; }
    // Forgets cached positions >= n (n <= n_past).
    void truncate(int64_t n);
    void add_hook(LayerHook* hook) { hooks_.push_back(hook); }
    void clear_hooks() { hooks_.clear(); }
    const Model& model() const { return model_; }
    ThreadPool& pool() { return *pool_; }

private:
    Context(const Model& m, ContextParams p);
    void matmul(const Weight& w, const float* x, int64_t n, float* y);
    void attention(int64_t layer, int64_t n, const float* q, float* out);

    const Model& model_;
    ContextParams params_;
    std::unique_ptr<ThreadPool> pool_;
    int64_t n_past_ = 0;
    // [n_layer][n_ctx][n_head_kv * head_dim], f16 or f32 per params_.kv_f16
    std::vector<uint8_t> k_cache_, v_cache_;
    size_t kv_row_bytes_ = 0;
    float rope_theta_scale_ = 1.f;  // base^(-2/n_rot)
    std::vector<LayerHook*> hooks_;
    cpu::Acts acts_;
    std::vector<float> logits_;
    // scratch
    std::vector<float> x_, h_, q_, k_, v_, att_, g_, u_;
};

}  // namespace strata::model

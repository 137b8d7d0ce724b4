// Hooks for cross-cutting features (steering / function vectors, activation capture).
// Model code calls them at fixed points; features implement them. Never put feature
// `if`s in arch code: add a hook point here instead.
#pragma once

#include <cstdint>

namespace strata::model {

struct Weight;

// Projection roles, shared by adapters (LoRA targets) and anything that taps a matmul.
enum class WeightRole { kOther, kQ, kK, kV, kO, kGate, kUp, kDown, kOutput };
const char* weight_role_name(WeightRole r);  // "q", "k", ..., as PEFT suffixes use them

// Called after every weight matmul y = W x of a layer (x: [n][n_cols], y: [n][n_rows]).
// Runtime (unmerged) LoRA adds s * B (A x) to y here; activation probes read x.
class MatmulHook {
public:
    virtual ~MatmulHook() = default;
    virtual void after_matmul(const Weight& w, const float* x, int64_t n, float* y) = 0;
};

// Called once per sequence and layer after attention, read-only: q [n][n_head*head_dim] and
// k, v [n][n_head_kv*head_dim] post-RoPE (what the KV cache was given), att [n][n_head*head_dim]
// the attention output before W_o, for positions pos0 .. pos0 + n - 1. Used by evaluation
// tools (e.g. `strata kv-error`: static vs accumulated attention error of a KV format).
class AttentionHook {
public:
    virtual ~AttentionHook() = default;
    virtual void after_attention(int layer, const float* q, const float* k, const float* v, const float* att,
                                 int64_t n, int64_t pos0) = 0;
};

class LayerHook {
public:
    virtual ~LayerHook() = default;
    // Residual stream after block `layer` (after the FFN residual add), rows of n_embd
    // values for n_tokens tokens at positions pos0 .. pos0 + n_tokens - 1. May modify x.
    virtual void after_layer(int layer, float* x, int64_t n_tokens, int64_t n_embd, int64_t pos0) = 0;
};

}  // namespace strata::model

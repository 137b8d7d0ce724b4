// Hooks for cross-cutting features (steering / function vectors, activation capture).
// Model code calls them at fixed points; features implement them. Never put feature
// `if`s in arch code: add a hook point here instead.
#pragma once

#include <cstdint>

namespace strata::model {

class LayerHook {
public:
    virtual ~LayerHook() = default;
    // Residual stream after block `layer` (after the FFN residual add), rows of n_embd
    // values for n_tokens tokens at positions pos0 .. pos0 + n_tokens - 1. May modify x.
    virtual void after_layer(int layer, float* x, int64_t n_tokens, int64_t n_embd, int64_t pos0) = 0;
};

}  // namespace strata::model

// Runtime (unmerged) LoRA: a MatmulHook that adds user_scale * s * B (A x) to the output of
// every adapted projection, for any number of adapters at once. The base weights are never
// touched, so adapters can be swapped per request; the cost is 2 r (d_in + d_out) flops per
// token per module, a few percent of the matmul for r = 8.
#pragma once

#include <memory>
#include <vector>

#include "adapters/lora.h"

namespace strata::adapters {

class LoraHook final : public model::MatmulHook {
public:
    explicit LoraHook(int64_t n_layer);
    // The adapter must already be checked against the model (check_against).
    void add(std::shared_ptr<const LoraAdapter> ad, float user_scale);
    void after_matmul(const model::Weight& w, const float* x, int64_t n, float* y) override;
    size_t size() const { return adapters_.size(); }

private:
    struct Entry {
        const LoraModule* m;
        float scale;  // user scale x module scale
    };
    int64_t n_layer_;
    std::vector<std::shared_ptr<const LoraAdapter>> adapters_;
    std::vector<std::vector<Entry>> by_module_;  // [n_layer * kNumRoles]
    std::vector<float> tmp_;
};

}  // namespace strata::adapters

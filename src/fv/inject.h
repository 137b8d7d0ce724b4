// Run-time injection of function vectors through the model's hook points (model/hooks.h);
// model code has no function-vector branches.
//
//   aggregated, hook point 0  -> LayerHook::after_layer(layer): x += scale * v   (block output)
//   aggregated, hook point 1  -> MatmulHook::after_matmul(o_proj of layer): y += scale * v
//   distributed               -> the same o_proj hook with u_l = sum_h W_O[:, h] abar_{l,h}
//                                (exact: o_proj is linear), precomputed at add()
//
// Positions, per Context::eval call (a prefill is one call, each decode step one call):
//   kLastAndGenerated (default): the last row of every call = the last prompt token and each
//                                generated token;
//   kLastPrompt: the last row of the first call after construction or reset() only;
//   kAll: every row.
// Several vectors may be added; contributions add.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fv/fvec.h"
#include "model/forward.h"
#include "model/hooks.h"
#include "model/model.h"

namespace strata::fv {

// "FILE[:SCALE]" as the --fv flag takes it.
struct FvSpec {
    std::string path;
    float scale = 1.f;
};
Result<FvSpec> parse_fv_spec(const std::string& arg);

class FvHook final : public model::LayerHook, public model::MatmulHook {
public:
    explicit FvHook(const model::Model& m);
    // fv must have passed check_model against this model (parse_fvec with an identity does).
    Status add(std::shared_ptr<const FunctionVector> fv, float runtime_scale = 1.f);
    // Registers this hook on ctx (as a layer hook, and as a matmul hook when any vector adds
    // at the attention output). The hook must outlive its use by ctx.
    void attach(model::Context& ctx);
    // The kLastPrompt policy treats the next eval call as the prompt again.
    void reset() { calls_ = 0; }
    bool empty() const { return vecs_.empty(); }
    // Identity of the attached vector set for prefix-cache keys: "" when empty, else the
    // sorted "<blob sha256>*<runtime scale>" items joined by ','. Two hooks with equal keys
    // change activations identically.
    std::string cache_key() const;

    void after_layer(int layer, float* x, int64_t n_tokens, int64_t n_embd, int64_t pos0) override;
    void after_matmul(const model::Weight& w, const float* x, int64_t n, float* y) override;

private:
    struct Add {
        PositionPolicy policy;
        std::vector<float> v;  // n_embd, scale folded in
    };
    void apply(const std::vector<Add>& adds, float* x, int64_t n_tokens, int64_t n_embd) const;

    const model::Model& model_;
    std::vector<std::pair<std::shared_ptr<const FunctionVector>, float>> vecs_;
    std::vector<std::vector<Add>> block_, attn_;  // per layer
    bool any_attn_ = false;
    int64_t calls_ = 0;
};

// Dequantized W_O[:, head] * values summed into out (n_embd), for one layer's o_proj.
void add_head_output(const model::Weight& wo, int head, int64_t head_dim, const float* values, float scale, float* out);

}  // namespace strata::fv

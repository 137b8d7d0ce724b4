// One forward pass recorded through hooks, and the AttnLRP relevance pass at the last
// position (shared/specs/function-vectors.md §3.3 and its last-position note).
//
// The relevance of a tensor z is R(z) = z * G~(z), where G~ is reverse-mode differentiation
// from the target's raw logit with the AttnLRP local rules:
//   RMSNorm: 1/rms(x) held constant;  SiLU: identity rule, g_x = g_y * silu(x)/x = g_y * sigmoid(x);
//   silu(gate)*up, Q.K^T, A.V: uniform rule (gradient halved per bilinear op);
//   softmax, linear layers, RoPE, residual adds: plain gradient.
// Rules::kGradient switches every rule off (the plain gradient), which the tests compare
// with finite differences; Rules::kLrp is compared with an independent autograd reference
// (tools/fv/lrp_reference.py).
//
// Only position T-1 is differentiated: for a target at the last position, a hidden state at
// T-1 reaches the target only through position T-1 of later layers, and the keys/values of
// earlier positions are constants for this pass. The head scores therefore come out exact.
#pragma once

#include <span>
#include <vector>

#include "model/forward.h"
#include "model/hooks.h"
#include "model/model.h"

namespace strata::fv {

struct LayerRecord {
    // Last position (row T-1).
    std::vector<float> resid_in, h_attn, q, att, attn_out, h_ffn, gate, up, resid_out;
    // Every position: pre-RoPE keys and values, [T][n_head_kv * head_dim].
    std::vector<float> k, v;
};

struct ForwardRecord {
    int64_t n_tokens = 0;
    std::vector<LayerRecord> layers;
    std::vector<float> logits;  // last position
};

// Captures what the relevance pass needs. Attach to a context in exact mode with an fp32 KV
// cache, evaluate the whole prompt in one call from an empty cache.
class Recorder final : public model::LayerHook, public model::MatmulHook {
public:
    explicit Recorder(const model::Model& m);
    void start(int64_t n_tokens, int32_t last_token);  // clears the record
    ForwardRecord& record() { return rec_; }
    void after_layer(int layer, float* x, int64_t n_tokens, int64_t n_embd, int64_t pos0) override;
    void after_matmul(const model::Weight& w, const float* x, int64_t n, float* y) override;

private:
    const model::Model& m_;
    ForwardRecord rec_;
};

// Runs tokens from an empty cache with a Recorder attached (ctx must be exact, fp32 KV);
// the context's hooks are restored afterwards.
// The relevance pass (relevance_pass) is written for the llama block; other blocks get an
// error naming the feature it lacks. Recording and the mean / CIE methods take any block.
Status relevance_supports(const model::Model& m);
Result<ForwardRecord> record_forward(model::Context& ctx, std::span<const int32_t> tokens);

enum class Rules { kLrp, kGradient };

struct Relevance {
    float target_logit = 0.f;
    // Per layer, last position: G~ at the head outputs (o_proj input), [L][n_head*head_dim].
    std::vector<std::vector<float>> g_att;
    // Per layer: A[h, T-1, j] * dot(G~(o_h), v_j) for every head h and key j, [L][n_head*T]
    // (the plain dot product: the uniform-rule 1/2 on v is common to all heads).
    std::vector<std::vector<float>> attn_rel;
    std::vector<float> g_embed;  // G~ at the last token's input embedding
    // Head scores [L*n_head]: (a) positive attention relevance on the label positions,
    // (b) on all earlier positions, (c) signed head relevance dot(o_h, G~(o_h)).
    std::vector<float> score_labels, score_all, score_signed;
    float attn_check = 0.f;  // max |sum_j A_j v_j - recorded head output| (self-check)
};

Relevance relevance_pass(const model::Model& m, const ForwardRecord& rec, int32_t target,
                         std::span<const int32_t> label_pos, Rules rules = Rules::kLrp);

// y[c] += sum_r g[r] * W[r][c] (W^T g), dequantizing W row by row.
void matvec_t(const model::Weight& w, const float* g, float* y);

}  // namespace strata::fv

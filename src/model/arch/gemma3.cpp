// Gemma 3 (text): embeddings scaled by sqrt(n_embd), per-head q/k RMSNorm, NeoX RoPE,
// RMSNorm after attention and after the FFN (before each residual add), GELU (tanh)
// gated FFN, Q scaled by 1/sqrt(head_dim) before attention, and sliding-window layers
// with their own RoPE base: with `gemma3.attention.sliding_window` set, every layer but
// each sliding_window_pattern-th (default 6: layers 5, 11, ...) is a window layer. The
// GGUF stores RMSNorm weights with Gemma's +1 already folded in, so norms are plain.
#include <cmath>

#include "model/model.h"

namespace strata::model {

Result<std::unique_ptr<Model>> load_gemma3(const gguf::File& f) {
    auto m = std::make_unique<Model>();
    LayerSpec spec;
    spec.qk_norm = spec.post_attn_norm = spec.post_ffn_norm = true;
    spec.act = FfnAct::kGeluTanh;
    spec.rope.kind = RopeKind::kNeox;
    STRATA_TRY(read_common_hparams(f, "gemma3", spec, &m->hp));
    HParams& hp = m->hp;
    const std::string p = "gemma3.";
    hp.embd_scale = std::sqrt(float(hp.n_embd));
    hp.logit_softcap = float(f.get_float_or(p + "final_logit_softcapping", 0.0));
    if (hp.logit_softcap < 0 || !std::isfinite(hp.logit_softcap))
        return invalid_input("{}final_logit_softcapping must be >= 0", p);
    // Gemma 3 27B scales queries by 1/sqrt(n_embd / n_head) instead; 62 blocks identify it.
    const float q_scale = hp.n_layer == 62 ? 1.0f / std::sqrt(float(hp.n_embd / hp.n_head))
                                           : 1.0f / std::sqrt(float(hp.head_dim));
    const int64_t window = f.get_int_or(p + "attention.sliding_window", 0);
    if (window < 0) return invalid_input("{}attention.sliding_window must be >= 0 (got {})", p, window);
    std::vector<bool> is_swa(size_t(hp.n_layer), false);
    if (window > 0) {
        const gguf::Value* pat = f.find(p + "attention.sliding_window_pattern");
        if (pat && pat->type == gguf::ValueType::ARRAY) {
            if (int64_t(pat->n_elems) != hp.n_layer || pat->elem_type != gguf::ValueType::BOOL)
                return invalid_input("{}attention.sliding_window_pattern: expected {} booleans", p, hp.n_layer);
            for (int64_t l = 0; l < hp.n_layer; ++l) is_swa[size_t(l)] = pat->ints[size_t(l)] != 0;
        } else {
            const int64_t n_pattern = f.get_int_or(p + "attention.sliding_window_pattern", 6);
            if (n_pattern < 0) return invalid_input("{}attention.sliding_window_pattern must be >= 0", p);
            for (int64_t l = 0; l < hp.n_layer; ++l)
                is_swa[size_t(l)] = n_pattern == 0 || l % n_pattern < n_pattern - 1;
        }
    }
    const float swa_base = float(f.get_float_or(p + "rope.freq_base_swa", 10000.0));
    if (!(swa_base > 0) || !std::isfinite(swa_base)) return invalid_input("{}rope.freq_base_swa must be positive", p);
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        LayerSpec& s = hp.layer[size_t(l)];
        s.attn.q_scale = q_scale;
        s.attn.kq_scale = 1.f;
        if (is_swa[size_t(l)]) {
            s.attn.window = window;
            s.rope.base = swa_base;
            s.rope.freq_scale = 1.f;  // window layers do not take the global rope scaling
        }
    }
    STRATA_TRY(bind_standard_tensors(f, m.get()));
    return m;
}

}  // namespace strata::model

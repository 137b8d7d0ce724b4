// LLaDA (masked-diffusion LM): the llama block with bidirectional attention over the whole
// sequence and no cache across denoising steps; the mask token comes from
// tokenizer.ggml.mask_token_id. Hyper-parameters under `llada.*`.
#include "model/model.h"

namespace strata::model {

Result<std::unique_ptr<Model>> load_llada(const gguf::File& f) {
    auto m = std::make_unique<Model>();
    LayerSpec spec;
    spec.attn.causal = false;
    STRATA_TRY(read_common_hparams(f, "llada", spec, &m->hp));
    HParams& hp = m->hp;
    hp.causal = false;
    if (f.find("tokenizer.ggml.mask_token_id")) {
        auto id = f.get_int("tokenizer.ggml.mask_token_id");
        if (!id) return id.error();
        if (*id < 0 || *id >= hp.n_vocab)
            return invalid_input("tokenizer.ggml.mask_token_id {} is outside the vocabulary [0, {})", *id, hp.n_vocab);
        hp.mask_token = int32_t(*id);
    }
    STRATA_TRY(bind_standard_tensors(f, m.get()));
    return m;
}

}  // namespace strata::model

// Llama architecture (SmolLM2 and other llama-arch GGUFs): pre-norm blocks, RMSNorm,
// GQA attention with normal (adjacent-pair) RoPE, SwiGLU FFN. Hyper-parameters under
// `llama.*`, tensors per docs/design.md ("Model layer").
#include "model/model.h"

namespace strata::model {

Result<std::unique_ptr<Model>> load_llama(const gguf::File& f) {
    auto m = std::make_unique<Model>();
    LayerSpec spec;  // the defaults are the llama block
    STRATA_TRY(read_common_hparams(f, "llama", spec, &m->hp));
    STRATA_TRY(bind_standard_tensors(f, m.get()));
    return m;
}

}  // namespace strata::model

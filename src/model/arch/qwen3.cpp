// Qwen3 (dense): the llama block plus per-head RMSNorm of q and k before RoPE, and NeoX
// (split-half) RoPE. Hyper-parameters under `qwen3.*`.
#include "model/model.h"

namespace strata::model {

Result<std::unique_ptr<Model>> load_qwen3(const gguf::File& f) {
    auto m = std::make_unique<Model>();
    LayerSpec spec;
    spec.qk_norm = true;
    spec.rope.kind = RopeKind::kNeox;
    STRATA_TRY(read_common_hparams(f, "qwen3", spec, &m->hp));
    if (m->hp.n_rot != m->hp.head_dim)
        return unsupported("qwen3.rope.dimension_count {} differs from the head size {}", m->hp.n_rot, m->hp.head_dim);
    STRATA_TRY(bind_standard_tensors(f, m.get()));
    return m;
}

}  // namespace strata::model

// Shared LoRA helpers: role names, shape checks against the base model, the q/k row
// permutation between HF and GGUF layouts, and dense deltas.
#include "adapters/lora.h"

#include <algorithm>
#include <cmath>

#include "adapters/linalg.h"
#include "model/model.h"

namespace strata::adapters {

int role_index(WeightRole r) {
    for (int i = 0; i < kNumRoles; ++i)
        if (kRoles[i] == r) return i;
    return -1;
}

const char* peft_module_path(WeightRole r) {
    switch (r) {
        case WeightRole::kQ: return "self_attn.q_proj";
        case WeightRole::kK: return "self_attn.k_proj";
        case WeightRole::kV: return "self_attn.v_proj";
        case WeightRole::kO: return "self_attn.o_proj";
        case WeightRole::kGate: return "mlp.gate_proj";
        case WeightRole::kUp: return "mlp.up_proj";
        case WeightRole::kDown: return "mlp.down_proj";
        default: return "?";
    }
}

const char* gguf_tensor_stem(WeightRole r) {
    switch (r) {
        case WeightRole::kQ: return "attn_q";
        case WeightRole::kK: return "attn_k";
        case WeightRole::kV: return "attn_v";
        case WeightRole::kO: return "attn_output";
        case WeightRole::kGate: return "ffn_gate";
        case WeightRole::kUp: return "ffn_up";
        case WeightRole::kDown: return "ffn_down";
        default: return "?";
    }
}

int64_t ModelShape::d_out(WeightRole r) const {
    switch (r) {
        case WeightRole::kQ: return n_head * head_dim;
        case WeightRole::kK: case WeightRole::kV: return n_head_kv * head_dim;
        case WeightRole::kO: case WeightRole::kDown: return n_embd;
        case WeightRole::kGate: case WeightRole::kUp: return n_ff;
        default: return 0;
    }
}

int64_t ModelShape::d_in(WeightRole r) const {
    switch (r) {
        case WeightRole::kO: return n_head * head_dim;
        case WeightRole::kDown: return n_ff;
        case WeightRole::kQ: case WeightRole::kK: case WeightRole::kV: case WeightRole::kGate:
        case WeightRole::kUp: return n_embd;
        default: return 0;
    }
}

ModelShape model_shape(const model::Model& m) {
    ModelShape s;
    s.arch = m.hp.arch;
    s.n_layer = m.hp.n_layer;
    s.n_embd = m.hp.n_embd;
    s.n_ff = m.hp.n_ff;
    s.n_head = m.hp.n_head;
    s.n_head_kv = m.hp.n_head_kv;
    s.head_dim = m.hp.head_dim;
    return s;
}

std::string LoraModule::name() const { return "blk." + std::to_string(layer) + "." + gguf_tensor_stem(role); }

const LoraModule* LoraAdapter::find(int layer, WeightRole r) const {
    for (const auto& m : modules)
        if (m.layer == layer && m.role == r) return &m;
    return nullptr;
}

int64_t LoraAdapter::max_rank() const {
    int64_t r = 0;
    for (const auto& m : modules) r = std::max(r, m.rank);
    return r;
}

void LoraAdapter::sort() {
    std::sort(modules.begin(), modules.end(), [](const LoraModule& x, const LoraModule& y) {
        return x.layer != y.layer ? x.layer < y.layer : role_index(x.role) < role_index(y.role);
    });
}

Status check_against(const LoraAdapter& ad, const ModelShape& s) {
    for (size_t i = 0; i < ad.modules.size(); ++i) {
        const LoraModule& m = ad.modules[i];
        if (m.layer < 0 || m.layer >= s.n_layer)
            return invalid_input("{}: layer {} out of range (the base model has {} layers)", m.name(), m.layer,
                                 s.n_layer);
        if (m.d_in != s.d_in(m.role) || m.d_out != s.d_out(m.role))
            return invalid_input("{}: adapter is {}x{} (out x in), base weight is {}x{}", m.name(), m.d_out, m.d_in,
                                 s.d_out(m.role), s.d_in(m.role));
        if (m.rank < 1 || int64_t(m.a.size()) != m.rank * m.d_in || int64_t(m.b.size()) != m.d_out * m.rank)
            return invalid_input("{}: A/B sizes do not match rank {}", m.name(), m.rank);
        if (!std::isfinite(m.scale)) return invalid_input("{}: scale is not finite", m.name());
        if (i > 0 && ad.modules[i - 1].layer == m.layer && ad.modules[i - 1].role == m.role)
            return invalid_input("{}: adapted twice", m.name());
    }
    return ok_status();
}

int64_t permuted_heads(const ModelShape& s, WeightRole r) {
    if (s.arch != "llama") return 0;
    return r == WeightRole::kQ ? s.n_head : r == WeightRole::kK ? s.n_head_kv : 0;
}

namespace {
// to_gguf: dst row (h*hd + 2j + i) takes src row (h*hd + i*hd/2 + j); the inverse swaps roles.
void permute(std::vector<float>& m, int64_t d_out, int64_t cols, int64_t n_head, bool to_gguf) {
    if (n_head <= 0 || d_out % n_head != 0 || (d_out / n_head) % 2 != 0) return;
    const int64_t hd = d_out / n_head;
    std::vector<float> src = m;
    for (int64_t h = 0; h < n_head; ++h)
        for (int64_t i = 0; i < 2; ++i)
            for (int64_t j = 0; j < hd / 2; ++j) {
                const int64_t g = h * hd + 2 * j + i, f = h * hd + i * (hd / 2) + j;
                const int64_t dst_row = to_gguf ? g : f, src_row = to_gguf ? f : g;
                std::copy_n(&src[size_t(src_row * cols)], cols, &m[size_t(dst_row * cols)]);
            }
}
}  // namespace

void permute_rows_hf_to_gguf(std::vector<float>& m, int64_t d_out, int64_t cols, int64_t n_head) {
    permute(m, d_out, cols, n_head, true);
}
void permute_rows_gguf_to_hf(std::vector<float>& m, int64_t d_out, int64_t cols, int64_t n_head) {
    permute(m, d_out, cols, n_head, false);
}

std::vector<float> dense_delta(const LoraModule& m) {
    // Eigen's blocked GEMM: this runs twice per module in every dense merge (TIES/DARE), so a
    // scalar loop here was a large share of the whole-model merge time.
    return dense_product(m.b, m.a, m.d_out, m.rank, m.d_in, m.scale);
}

}  // namespace strata::adapters

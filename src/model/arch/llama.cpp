// Llama architecture (SmolLM2 and other llama-arch GGUFs): hyper-parameters from
// `llama.*` keys, tensors per shared/specs/gguf-and-llama.md §3. The forward pass is the
// shared pre-norm block in forward.cpp; this file only reads and binds.
#include <cmath>

#include "model/model.h"

namespace strata::model {

namespace {

Result<int64_t> req_int(const gguf::File& f, const std::string& key, int64_t lo, int64_t hi) {
    auto v = f.get_int(key);
    if (!v) return v.error();
    if (*v < lo || *v > hi) return invalid_input("{}: value {} out of range [{}, {}]", key, *v, lo, hi);
    return *v;
}

}  // namespace

Result<std::unique_ptr<Model>> load_llama(const gguf::File& f) {
    auto m = std::make_unique<Model>();
    HParams& hp = m->hp;
    hp.arch = "llama";
    const std::string p = "llama.";
    constexpr int64_t kMaxDim = 1 << 20;

    auto n_embd = req_int(f, p + "embedding_length", 1, kMaxDim);
    if (!n_embd) return n_embd.error();
    auto n_layer = req_int(f, p + "block_count", 1, 4096);
    if (!n_layer) return n_layer.error();
    auto n_ff = req_int(f, p + "feed_forward_length", 1, kMaxDim);
    if (!n_ff) return n_ff.error();
    auto n_head = req_int(f, p + "attention.head_count", 1, 4096);
    if (!n_head) return n_head.error();
    auto n_ctx = req_int(f, p + "context_length", 1, int64_t(1) << 24);
    if (!n_ctx) return n_ctx.error();
    hp.n_embd = *n_embd;
    hp.n_layer = *n_layer;
    hp.n_ff = *n_ff;
    hp.n_head = *n_head;
    hp.n_ctx_train = *n_ctx;
    hp.n_head_kv = f.get_int_or(p + "attention.head_count_kv", hp.n_head);
    if (hp.n_head_kv < 1 || hp.n_head % hp.n_head_kv != 0)
        return invalid_input("{}attention.head_count_kv: {} does not divide head_count {}", p, hp.n_head_kv,
                             hp.n_head);
    if (hp.n_embd % hp.n_head != 0)
        return invalid_input("{}embedding_length {} is not a multiple of head_count {}", p, hp.n_embd, hp.n_head);
    hp.head_dim = f.get_int_or(p + "attention.key_length", hp.n_embd / hp.n_head);
    if (f.get_int_or(p + "attention.value_length", hp.head_dim) != hp.head_dim)
        return unsupported("{}attention.value_length differs from key_length", p);
    if (hp.head_dim < 2 || hp.head_dim % 2 != 0 || hp.head_dim > 1024)
        return invalid_input("head dimension {} must be even and at most 1024", hp.head_dim);
    hp.n_rot = f.get_int_or(p + "rope.dimension_count", hp.head_dim);
    if (hp.n_rot < 2 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
        return invalid_input("{}rope.dimension_count {} must be even and at most the head size {}", p,
                             hp.n_rot, hp.head_dim);
    hp.rope_base = float(f.get_float_or(p + "rope.freq_base", 10000.0));
    hp.rms_eps = float(f.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5));
    if (!(hp.rope_base > 0) || !std::isfinite(hp.rope_base))
        return invalid_input("{}rope.freq_base must be positive", p);
    if (!(hp.rms_eps > 0) || !std::isfinite(hp.rms_eps))
        return invalid_input("{}attention.layer_norm_rms_epsilon must be positive", p);
    if (f.find(p + "rope.scaling.type")) {
        auto t = f.get_string(p + "rope.scaling.type");
        if (t && *t != "none") return unsupported("rope scaling '{}' is not supported yet", *t);
    }

    const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight");
    if (!emb) return not_found("tensor 'token_embd.weight' is missing");
    if (emb->n_dims != 2 || int64_t(emb->ne[0]) != hp.n_embd)
        return invalid_input("token_embd.weight: expected shape [{}, n_vocab], file has {}", hp.n_embd,
                             emb->shape_str());
    hp.n_vocab = int64_t(emb->ne[1]);
    if (const gguf::Value* toks = f.find("tokenizer.ggml.tokens"); toks && int64_t(toks->n_elems) != hp.n_vocab)
        return invalid_input("tokenizer has {} tokens but token_embd.weight has {} rows", toks->n_elems,
                             hp.n_vocab);

    auto bind = [&](const std::string& n, int64_t cols, int64_t rows, Weight* out) -> Status {
        auto w = bind_matrix(f, n, cols, rows);
        if (!w) return w.error();
        *out = *w;
        return ok_status();
    };
    STRATA_TRY(bind("token_embd.weight", hp.n_embd, hp.n_vocab, &m->tok_embd));
    if (f.find_tensor("output.weight")) {
        STRATA_TRY(bind("output.weight", hp.n_embd, hp.n_vocab, &m->output));
    } else {
        m->output = m->tok_embd;  // tied
    }
    m->output.role = WeightRole::kOutput;
    auto on = load_vector(f, "output_norm.weight", hp.n_embd);
    if (!on) return on.error();
    m->output_norm = std::move(*on);

    const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
    m->layers.resize(size_t(hp.n_layer));
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        auto& L = m->layers[size_t(l)];
        const std::string b = "blk." + std::to_string(l) + ".";
        auto an = load_vector(f, b + "attn_norm.weight", hp.n_embd);
        if (!an) return an.error();
        L.attn_norm = std::move(*an);
        auto fn = load_vector(f, b + "ffn_norm.weight", hp.n_embd);
        if (!fn) return fn.error();
        L.ffn_norm = std::move(*fn);
        for (const char* bias : {"attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias"})
            if (f.find_tensor(b + bias)) return unsupported("{}{}: attention biases are not supported yet", b, bias);
        STRATA_TRY(bind(b + "attn_q.weight", hp.n_embd, q_dim, &L.wq));
        STRATA_TRY(bind(b + "attn_k.weight", hp.n_embd, kv_dim, &L.wk));
        STRATA_TRY(bind(b + "attn_v.weight", hp.n_embd, kv_dim, &L.wv));
        STRATA_TRY(bind(b + "attn_output.weight", q_dim, hp.n_embd, &L.wo));
        STRATA_TRY(bind(b + "ffn_gate.weight", hp.n_embd, hp.n_ff, &L.gate));
        STRATA_TRY(bind(b + "ffn_up.weight", hp.n_embd, hp.n_ff, &L.up));
        STRATA_TRY(bind(b + "ffn_down.weight", hp.n_ff, hp.n_embd, &L.down));
        const std::pair<Weight*, WeightRole> roles[] = {{&L.wq, WeightRole::kQ},     {&L.wk, WeightRole::kK},
                                                        {&L.wv, WeightRole::kV},     {&L.wo, WeightRole::kO},
                                                        {&L.gate, WeightRole::kGate}, {&L.up, WeightRole::kUp},
                                                        {&L.down, WeightRole::kDown}};
        for (auto [w, role] : roles) {
            w->layer = int(l);
            w->role = role;
        }
    }
    return m;
}

}  // namespace strata::model

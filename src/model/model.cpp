// Model loading: the architecture registry and the tensor binding helpers that check
// every shape and type against what the architecture expects.
#include "model/model.h"

#include <cmath>
#include <functional>
#include <set>

#include "tensor/cpu/kernels.h"

namespace strata::model {

// One loader per architecture file (arch/<name>.cpp).
Result<std::unique_ptr<Model>> load_llama(const gguf::File& f);
Result<std::unique_ptr<Model>> load_qwen3(const gguf::File& f);
Result<std::unique_ptr<Model>> load_gemma3(const gguf::File& f);
Result<std::unique_ptr<Model>> load_llada(const gguf::File& f);

namespace {
struct ArchEntry {
    const char* name;
    Result<std::unique_ptr<Model>> (*load)(const gguf::File&);
};
// The registry: one line per architecture.
constexpr ArchEntry kArchitectures[] = {
    {"llama", load_llama},
    {"qwen3", load_qwen3},
    {"gemma3", load_gemma3},
    {"llada", load_llada},
};
}  // namespace

const char* ffn_act_name(FfnAct a) { return a == FfnAct::kSilu ? "silu" : "gelu_tanh"; }

const char* rope_kind_name(RopeKind k) {
    switch (k) {
        case RopeKind::kNone: return "none";
        case RopeKind::kNorm: return "normal";
        default: return "neox";
    }
}

const char* weight_role_name(WeightRole r) {
    switch (r) {
        case WeightRole::kQ: return "q";
        case WeightRole::kK: return "k";
        case WeightRole::kV: return "v";
        case WeightRole::kO: return "o";
        case WeightRole::kGate: return "gate";
        case WeightRole::kUp: return "up";
        case WeightRole::kDown: return "down";
        case WeightRole::kOutput: return "output";
        default: return "other";
    }
}

std::vector<std::string> architecture_names() {
    std::vector<std::string> v;
    for (const auto& a : kArchitectures) v.emplace_back(a.name);
    return v;
}

size_t Model::weight_bytes() const {
    size_t n = output.nbytes();  // (+ the norms, negligible)
    for (const auto& l : layers)
        n += l.wq.nbytes() + l.wk.nbytes() + l.wv.nbytes() + l.wo.nbytes() + l.gate.nbytes() +
             l.up.nbytes() + l.down.nbytes();
    return n;
}

Result<Weight> bind_matrix(const gguf::File& f, const std::string& name, int64_t n_cols, int64_t n_rows) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (!t) return not_found("tensor '{}' is missing", name);
    if (t->n_dims != 2 || int64_t(t->ne[0]) != n_cols || int64_t(t->ne[1]) != n_rows)
        return invalid_input("{}: expected shape [{}, {}], file has {}", name, n_cols, n_rows, t->shape_str());
    if (!cpu::vec_dot_fn(t->type, false) || !cpu::vec_dot_fn(t->type, true))
        return unsupported("{}: tensor type {} is not supported for matrix weights", name,
                           dtype_name(t->type));
    Weight w;
    w.name = name;
    w.type = t->type;
    w.data = t->data;
    w.n_cols = n_cols;
    w.n_rows = n_rows;
    w.row_bytes = t->row_bytes();
    return w;
}

namespace {
Result<int64_t> req_int(const gguf::File& f, const std::string& key, int64_t lo, int64_t hi) {
    auto v = f.get_int(key);
    if (!v) return v.error();
    if (*v < lo || *v > hi) return invalid_input("{}: value {} out of range [{}, {}]", key, *v, lo, hi);
    return *v;
}
}  // namespace

Status refuse_key(const gguf::File& f, const std::string& key, const std::string& why) {
    if (f.find(key)) return unsupported("{}: {}", key, why);
    return ok_status();
}

Status read_common_hparams(const gguf::File& f, const std::string& arch, const LayerSpec& defaults, HParams* hp_out) {
    HParams& hp = *hp_out;
    hp.arch = arch;
    const std::string p = arch + ".";
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
    if (!f.find(p + "attention.key_length") && hp.n_embd % hp.n_head != 0)
        return invalid_input("{}embedding_length {} is not a multiple of head_count {}", p, hp.n_embd, hp.n_head);
    hp.head_dim = f.get_int_or(p + "attention.key_length", hp.n_embd / hp.n_head);
    if (f.get_int_or(p + "attention.value_length", hp.head_dim) != hp.head_dim)
        return unsupported("{}attention.value_length differs from key_length", p);
    if (hp.head_dim < 2 || hp.head_dim % 2 != 0 || hp.head_dim > 1024)
        return invalid_input("head dimension {} must be even and at most 1024", hp.head_dim);
    hp.n_rot = f.get_int_or(p + "rope.dimension_count", hp.head_dim);
    if (hp.n_rot < 2 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
        return invalid_input("{}rope.dimension_count {} must be even and at most the head size {}", p, hp.n_rot,
                             hp.head_dim);
    hp.rope_base = float(f.get_float_or(p + "rope.freq_base", 10000.0));
    hp.rms_eps = float(f.get_float_or(p + "attention.layer_norm_rms_epsilon", 1e-5));
    if (!(hp.rope_base > 0) || !std::isfinite(hp.rope_base)) return invalid_input("{}rope.freq_base must be positive", p);
    if (!(hp.rms_eps > 0) || !std::isfinite(hp.rms_eps))
        return invalid_input("{}attention.layer_norm_rms_epsilon must be positive", p);
    float freq_scale = 1.f;
    if (f.find(p + "rope.scaling.type")) {
        auto t = f.get_string(p + "rope.scaling.type");
        if (!t) return t.error();
        if (*t == "linear") {
            const double factor = f.get_float_or(p + "rope.scaling.factor", 1.0);
            if (!(factor >= 1.0) || !std::isfinite(factor))
                return invalid_input("{}rope.scaling.factor must be >= 1 (got {})", p, factor);
            freq_scale = float(1.0 / factor);
        } else if (*t != "none") {
            return unsupported("{}rope.scaling.type '{}' is not supported (linear and none are)", p, *t);
        }
    }
    // Keys that change the computation in ways no architecture here implements.
    STRATA_TRY(refuse_key(f, p + "attention.clamp_kqv", "clamping of Q/K/V is not supported"));
    STRATA_TRY(refuse_key(f, p + "attn_logit_softcapping", "attention logit soft-capping is not supported"));
    STRATA_TRY(refuse_key(f, p + "rope.freq_factors", "RoPE frequency factors are not supported"));
    if (f.find_tensor("rope_freqs.weight")) return unsupported("rope_freqs.weight: RoPE frequency factors are not supported");

    const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight");
    if (!emb) return not_found("tensor 'token_embd.weight' is missing");
    if (emb->n_dims != 2 || int64_t(emb->ne[0]) != hp.n_embd)
        return invalid_input("token_embd.weight: expected shape [{}, n_vocab], file has {}", hp.n_embd, emb->shape_str());
    hp.n_vocab = int64_t(emb->ne[1]);
    if (const gguf::Value* toks = f.find("tokenizer.ggml.tokens"); toks && int64_t(toks->n_elems) != hp.n_vocab)
        return invalid_input("tokenizer has {} tokens but token_embd.weight has {} rows", toks->n_elems, hp.n_vocab);

    LayerSpec spec = defaults;
    spec.rope.base = hp.rope_base;
    spec.rope.n_rot = hp.n_rot;
    spec.rope.freq_scale = freq_scale;
    hp.layer.assign(size_t(hp.n_layer), spec);
    return ok_status();
}

Status bind_standard_tensors(const gguf::File& f, Model* m) {
    const HParams& hp = m->hp;
    auto bind = [&](const std::string& n, int64_t cols, int64_t rows, Weight* out) -> Status {
        auto w = bind_matrix(f, n, cols, rows);
        if (!w) return w.error();
        *out = *w;
        return ok_status();
    };
    auto vec = [&](const std::string& n, int64_t len, std::vector<float>* out) -> Status {
        auto v = load_vector(f, n, len);
        if (!v) return v.error();
        *out = std::move(*v);
        return ok_status();
    };
    STRATA_TRY(bind("token_embd.weight", hp.n_embd, hp.n_vocab, &m->tok_embd));
    if (f.find_tensor("output.weight")) {
        STRATA_TRY(bind("output.weight", hp.n_embd, hp.n_vocab, &m->output));
    } else {
        m->output = m->tok_embd;  // tied
    }
    m->output.role = WeightRole::kOutput;
    STRATA_TRY(vec("output_norm.weight", hp.n_embd, &m->output_norm));

    const int64_t q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
    m->layers.resize(size_t(hp.n_layer));
    std::set<std::string, std::less<>> known = {"attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
                                                "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight",
                                                "ffn_up.weight", "ffn_down.weight"};
    for (int64_t l = 0; l < hp.n_layer; ++l) {
        auto& L = m->layers[size_t(l)];
        const LayerSpec& sp = hp.layer[size_t(l)];
        const std::string b = "blk." + std::to_string(l) + ".";
        STRATA_TRY(vec(b + "attn_norm.weight", hp.n_embd, &L.attn_norm));
        STRATA_TRY(vec(b + "ffn_norm.weight", hp.n_embd, &L.ffn_norm));
        STRATA_TRY(bind(b + "attn_q.weight", hp.n_embd, q_dim, &L.wq));
        STRATA_TRY(bind(b + "attn_k.weight", hp.n_embd, kv_dim, &L.wk));
        STRATA_TRY(bind(b + "attn_v.weight", hp.n_embd, kv_dim, &L.wv));
        STRATA_TRY(bind(b + "attn_output.weight", q_dim, hp.n_embd, &L.wo));
        STRATA_TRY(bind(b + "ffn_gate.weight", hp.n_embd, hp.n_ff, &L.gate));
        STRATA_TRY(bind(b + "ffn_up.weight", hp.n_embd, hp.n_ff, &L.up));
        STRATA_TRY(bind(b + "ffn_down.weight", hp.n_ff, hp.n_embd, &L.down));
        if (sp.qk_norm) {
            STRATA_TRY(vec(b + "attn_q_norm.weight", hp.head_dim, &L.attn_q_norm));
            STRATA_TRY(vec(b + "attn_k_norm.weight", hp.head_dim, &L.attn_k_norm));
        }
        if (sp.post_attn_norm) STRATA_TRY(vec(b + "post_attention_norm.weight", hp.n_embd, &L.attn_post_norm));
        if (sp.post_ffn_norm) STRATA_TRY(vec(b + "post_ffw_norm.weight", hp.n_embd, &L.ffn_post_norm));
        const std::pair<Weight*, WeightRole> roles[] = {{&L.wq, WeightRole::kQ},     {&L.wk, WeightRole::kK},
                                                        {&L.wv, WeightRole::kV},     {&L.wo, WeightRole::kO},
                                                        {&L.gate, WeightRole::kGate}, {&L.up, WeightRole::kUp},
                                                        {&L.down, WeightRole::kDown}};
        for (auto [w, role] : roles) {
            w->layer = int(l);
            w->role = role;
        }
    }
    // Every block tensor must be one this spec reads: a bias, an extra norm or a fused
    // QKV we would not apply is refused by name.
    for (const auto& t : f.tensors()) {
        if (t.name.rfind("blk.", 0) != 0) continue;
        const size_t dot = t.name.find('.', 4);
        if (dot == std::string::npos) return invalid_input("tensor '{}': malformed block tensor name", t.name);
        const std::string rest = t.name.substr(dot + 1);
        int64_t l = -1;
        try {
            l = std::stoll(t.name.substr(4, dot - 4));
        } catch (...) {
            return invalid_input("tensor '{}': malformed block index", t.name);
        }
        if (l < 0 || l >= hp.n_layer) return invalid_input("tensor '{}': block index outside 0..{}", t.name, hp.n_layer - 1);
        const LayerSpec& sp = hp.layer[size_t(l)];
        const bool optional_known = (sp.qk_norm && (rest == "attn_q_norm.weight" || rest == "attn_k_norm.weight")) ||
                                    (sp.post_attn_norm && rest == "post_attention_norm.weight") ||
                                    (sp.post_ffn_norm && rest == "post_ffw_norm.weight");
        if (!known.count(rest) && !optional_known)
            return unsupported("tensor '{}' is not supported by the {} architecture here (biases, fused QKV and "
                               "extra norms are refused rather than ignored)",
                               t.name, hp.arch);
    }
    return ok_status();
}

Result<std::vector<float>> load_vector(const gguf::File& f, const std::string& name, int64_t n) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (!t) return not_found("tensor '{}' is missing", name);
    if (int64_t(t->n_elements()) != n || int64_t(t->ne[0]) != n)
        return invalid_input("{}: expected shape [{}], file has {}", name, n, t->shape_str());
    std::vector<float> v(static_cast<size_t>(n));
    if (!dequantize_row(t->type, t->data, v.data(), n))
        return unsupported("{}: tensor type {} is not supported for vectors", name, dtype_name(t->type));
    return v;
}

Result<std::unique_ptr<Model>> load_model(std::unique_ptr<gguf::File> file, const std::string& path) {
    auto arch = file->get_string("general.architecture");
    if (!arch) return arch.error().with_context(path);
    for (const auto& a : kArchitectures) {
        if (*arch == a.name) {
            auto m = a.load(*file);
            if (!m) return m.error().with_context(path);
            (*m)->file = std::move(file);
            (*m)->path = path;
            return m;
        }
    }
    std::string known;
    for (const auto& n : architecture_names()) known += (known.empty() ? "" : ", ") + n;
    return unsupported("{}: architecture '{}' is not supported (known: {})", path, *arch, known);
}

Result<std::unique_ptr<Model>> load_model(const std::string& path) {
    auto f = gguf::File::open(path);
    if (!f) return f.error();
    return load_model(std::move(*f), path);
}

}  // namespace strata::model

// FvHook: precomputed per-layer additions applied at the hook points.
#include "fv/inject.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "tensor/dtype.h"

namespace strata::fv {

Result<FvSpec> parse_fv_spec(const std::string& arg) {
    FvSpec s;
    s.path = arg;
    const size_t colon = arg.rfind(':');
    if (colon != std::string::npos && colon + 1 < arg.size()) {
        const std::string tail = arg.substr(colon + 1);
        float v = 0;
        auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), v);
        if (ec == std::errc() && p == tail.data() + tail.size()) {
            if (!std::isfinite(v) || std::fabs(v) > 1000.f)
                return invalid_input("--fv: scale {} in '{}' must be a finite number in [-1000, 1000]", tail, arg);
            s.path = arg.substr(0, colon);
            s.scale = v;
        }
    }
    if (s.path.empty()) return invalid_input("--fv: empty file name in '{}'", arg);
    return s;
}

void add_head_output(const model::Weight& wo, int head, int64_t head_dim, const float* values, float scale, float* out) {
    std::vector<float> row(static_cast<size_t>(wo.n_cols));
    for (int64_t r = 0; r < wo.n_rows; ++r) {
        dequantize_row(wo.type, wo.data + size_t(r) * wo.row_bytes, row.data(), wo.n_cols);
        const float* w = row.data() + head * head_dim;
        double s = 0;
        for (int64_t i = 0; i < head_dim; ++i) s += double(w[i]) * double(values[i]);
        out[r] += scale * float(s);
    }
}

FvHook::FvHook(const model::Model& m)
    : model_(m), block_(static_cast<size_t>(m.hp.n_layer)), attn_(size_t(m.hp.n_layer)) {}

Status FvHook::add(std::shared_ptr<const FunctionVector> fv, float runtime_scale) {
    const auto& hp = model_.hp;
    if (!fv) return invalid_input("null function vector");
    if (int64_t(fv->hidden_size) != hp.n_embd || int64_t(fv->n_layers) != hp.n_layer ||
        int64_t(fv->n_heads) != hp.n_head || int64_t(fv->head_dim) != hp.head_dim)
        return invalid_input("function vector sizes do not match the model");
    if (!std::isfinite(runtime_scale)) return invalid_input("function vector scale is not finite");
    const float s = fv->scale * runtime_scale;
    const int64_t E = hp.n_embd;
    if (fv->distributed) {
        std::vector<std::vector<float>> u(static_cast<size_t>(hp.n_layer));
        for (const FvEntry& e : fv->entries) {
            auto& ul = u[size_t(e.layer)];
            if (ul.empty()) ul.assign(size_t(E), 0.f);
            add_head_output(model_.layers[size_t(e.layer)].wo, e.head, hp.head_dim, e.values.data(), s, ul.data());
        }
        for (int64_t l = 0; l < hp.n_layer; ++l)
            if (!u[size_t(l)].empty()) {
                attn_[size_t(l)].push_back({fv->policy, std::move(u[size_t(l)])});
                any_attn_ = true;
            }
    } else {
        for (const FvEntry& e : fv->entries) {
            std::vector<float> v(e.values);
            for (float& x : v) x *= s;
            auto& dst = fv->hook_point == HookPoint::kBlockOutput ? block_ : attn_;
            dst[size_t(e.layer)].push_back({fv->policy, std::move(v)});
            if (fv->hook_point == HookPoint::kAttentionOutput) any_attn_ = true;
        }
    }
    vecs_.emplace_back(std::move(fv), runtime_scale);
    return ok_status();
}

void FvHook::attach(model::Context& ctx) {
    ctx.add_hook(this);
    if (any_attn_) ctx.add_matmul_hook(this);
}

std::string FvHook::cache_key() const {
    std::vector<std::string> items;
    for (const auto& [fv, s] : vecs_) items.push_back(fmt::format("{}*{}", fv->id, s));
    std::sort(items.begin(), items.end());
    std::string key;
    for (const auto& it : items) key += (key.empty() ? "" : ",") + it;
    return key;
}

void FvHook::apply(const std::vector<Add>& adds, float* x, int64_t n_tokens, int64_t n_embd) const {
    for (const Add& a : adds) {
        int64_t first = n_tokens - 1;
        if (a.policy == PositionPolicy::kAll) first = 0;
        else if (a.policy == PositionPolicy::kLastPrompt && calls_ > 0) continue;
        for (int64_t t = first; t < n_tokens; ++t) {
            float* row = x + t * n_embd;
            for (int64_t i = 0; i < n_embd; ++i) row[i] += a.v[size_t(i)];
        }
    }
}

void FvHook::after_layer(int layer, float* x, int64_t n_tokens, int64_t n_embd, int64_t /*pos0*/) {
    if (layer >= 0 && layer < int(block_.size())) apply(block_[size_t(layer)], x, n_tokens, n_embd);
    if (layer == int(block_.size()) - 1) ++calls_;
}

void FvHook::after_matmul(const model::Weight& w, const float* /*x*/, int64_t n, float* y) {
    if (w.role != model::WeightRole::kO || w.layer < 0 || w.layer >= int(attn_.size())) return;
    apply(attn_[size_t(w.layer)], y, n, w.n_rows);
}

}  // namespace strata::fv

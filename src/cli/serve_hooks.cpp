#include "cli/serve_hooks.h"

#include <filesystem>

#include <fmt/format.h>

#include "adapters/load.h"
#include "adapters/runtime.h"
#include "fv/inject.h"

namespace strata::cli {

namespace {

// Function vectors act on the answer positions only (engine::AnswerHook): this forwards the
// model's hook calls to the FvHook while the engine says the step reaches the answer.
class FvAnswerHook final : public engine::AnswerHook, public model::LayerHook, public model::MatmulHook {
public:
    explicit FvAnswerHook(std::unique_ptr<fv::FvHook> h) : inner_(std::move(h)) {}
    void attach(model::Context& ctx) override {
        ctx.add_hook(this);
        ctx.add_matmul_hook(this);
    }
    void set_active(bool on) override { active_ = on; }
    void after_layer(int layer, float* x, int64_t n_tokens, int64_t n_embd, int64_t pos0) override {
        if (active_) inner_->after_layer(layer, x, n_tokens, n_embd, pos0);
    }
    void after_matmul(const model::Weight& w, const float* x, int64_t n, float* y) override {
        if (active_) inner_->after_matmul(w, x, n, y);
    }

private:
    std::unique_ptr<fv::FvHook> inner_;
    bool active_ = false;
};

template <typename Item>
nlohmann::json list(const std::vector<Item>& items) {
    nlohmann::json a = nlohmann::json::array();
    for (size_t i = 0; i < items.size(); ++i)
        // The file's name only: a public route must not reveal the server's directory layout.
        a.push_back({{"id", i}, {"name", std::filesystem::path(items[i].path).filename().string()},
                     {"scale", items[i].scale}});
    return a;
}

// The request's selection, or the defaults: (index, scale) pairs with scale != 0.
template <typename Item>
Result<std::vector<std::pair<size_t, float>>> select(const char* field, const std::vector<Item>& items,
                                                     const std::optional<std::vector<server::HookRef>>& refs) {
    std::vector<std::pair<size_t, float>> out;
    if (!refs) {
        for (size_t i = 0; i < items.size(); ++i)
            if (items[i].scale != 0) out.emplace_back(i, items[i].scale);
        return out;
    }
    for (size_t k = 0; k < refs->size(); ++k) {
        const server::HookRef& r = (*refs)[k];
        if (r.id < 0 || size_t(r.id) >= items.size())
            return invalid_input("'{}[{}].id': no {} with id {} ({} loaded at start-up)", field, k,
                                 std::string_view(field) == "lora" ? "adapter" : "function vector", r.id, items.size());
        if (r.scale != 0) out.emplace_back(size_t(r.id), r.scale);
    }
    return out;
}

}  // namespace

Result<std::unique_ptr<ServeHooks>> ServeHooks::load(const model::Model& m, const std::vector<std::string>& lora,
                                                     const std::vector<std::string>& fvs) {
    std::unique_ptr<ServeHooks> h(new ServeHooks(m));
    const adapters::ModelShape shape = adapters::model_shape(m);
    for (const std::string& arg : lora) {
        auto spec = adapters::parse_lora_spec(arg);
        if (!spec) return Status(spec.error().code(), "--lora: " + spec.error().message());
        auto ad = adapters::load_adapter(spec->path, shape);
        if (!ad) return ad.error();
        h->lora_.push_back({spec->path, spec->scale, std::make_shared<const adapters::LoraAdapter>(std::move(*ad))});
    }
    if (!fvs.empty()) {
        auto id = fv::model_identity(m);
        if (!id) return id.error();
        for (const std::string& arg : fvs) {
            auto spec = fv::parse_fv_spec(arg);
            if (!spec) return spec.error();
            auto v = fv::load_fvec(spec->path, *id);
            if (!v) return Status(v.error().code(), "--fv: " + v.error().message());
            h->fv_.push_back({spec->path, spec->scale, std::make_shared<const fv::FunctionVector>(std::move(*v))});
        }
    }
    return h;
}

Result<engine::RequestHooks> ServeHooks::make(const std::optional<std::vector<server::HookRef>>& lora,
                                              const std::optional<std::vector<server::HookRef>>& fvs) const {
    engine::RequestHooks out;
    auto ls = select("lora", lora_, lora);
    if (!ls) return ls.error();
    auto fs = select("fv", fv_, fvs);
    if (!fs) return fs.error();
    if (!ls->empty()) {
        auto hook = std::make_shared<adapters::LoraHook>(model_.hp.n_layer);
        out.key += "lora:";
        for (auto [i, scale] : *ls) {
            hook->add(lora_[i].value, scale);
            out.key += fmt::format("{}*{},", i, scale);
        }
        out.every_token.push_back(std::move(hook));
    }
    if (!fs->empty()) {
        auto hook = std::make_unique<fv::FvHook>(model_);
        for (auto [i, scale] : *fs)
            if (Status s = hook->add(fv_[i].value, scale); !s) return s;
        out.key += "fv:" + hook->cache_key();
        out.answer = std::make_shared<FvAnswerHook>(std::move(hook));
    }
    return out;
}

nlohmann::json ServeHooks::list_lora() const { return list(lora_); }
nlohmann::json ServeHooks::list_fv() const { return list(fv_); }

}  // namespace strata::cli

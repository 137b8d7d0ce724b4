// `strata export`: bakes --lora adapters into the base model's projection weights and writes
// a complete GGUF (requantized to --type, default: each tensor's own type).
#include <fmt/format.h>

#include "adapters/export.h"
#include "adapters/load.h"
#include "cli/common.h"

namespace strata::cli {

Command export_command() {
    struct State {
        std::string model, out, type;
        std::vector<std::string> lora;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "export";
    c.summary = "bake LoRA adapters into the base weights and write a GGUF model";
    c.declare = [st](CLI::App* app) {
        app->add_option("-m,--model", st->model, "base model (.gguf); default: the default model in models/");
        app->add_option("--lora", st->lora, "adapter FILE[:SCALE] to bake in; repeatable")->required();
        app->add_option("--type", st->type, "projection type: f32, f16, q8_0, q4_0, q4_1 (default: keep)");
        app->add_option("-o,--out", st->out, "output model (.gguf)")->required();
    };
    c.run = [st]() -> int {
        auto type = adapters::parse_export_type(st->type);
        if (!type) return report("export", type.error());
        const std::string path = st->model.empty() ? engine::default_model_path() : st->model;
        auto m = model::load_model(path);
        if (!m) return report("export", m.error());
        const adapters::ModelShape shape = adapters::model_shape(**m);
        std::vector<adapters::LoraAdapter> ads;
        std::vector<float> scales;
        for (const auto& arg : st->lora) {
            auto spec = adapters::parse_lora_spec(arg);
            if (!spec) return report("export", spec.error());
            auto a = adapters::load_adapter(spec->path, shape);
            if (!a) return report("export", a.error());
            ads.push_back(std::move(*a));
            scales.push_back(spec->scale);
        }
        std::vector<adapters::ScaledAdapter> sa;
        for (size_t i = 0; i < ads.size(); ++i) sa.push_back({&ads[i], scales[i]});
        Status s = adapters::export_merged(**m, sa, st->out, *type, [](int64_t d, int64_t t) {
            fmt::print(stderr, "\rexport {}/{} tensors", d, t);
            if (d == t) fmt::print(stderr, "\n");
        });
        if (s) fmt::print(stderr, "wrote {}\n", st->out);
        return report("export", s);
    };
    return c;
}

}  // namespace strata::cli

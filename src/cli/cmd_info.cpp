// `strata info MODEL`: metadata and a tensor table (the file is validated, not run).
#include <fmt/format.h>

#include <map>

#include "cli/common.h"

namespace strata::cli {

Command info_command() {
    struct State {
        std::string path;
        bool all_tensors = false;
    };
    auto st = std::make_shared<State>();
    Command c;
    c.name = "info";
    c.summary = "print a GGUF file's metadata and tensor table";
    c.declare = [st](CLI::App* app) {
        app->add_option("model", st->path, "model file (.gguf)")->required();
        app->add_flag("--all", st->all_tensors, "list every tensor (default: first 24)");
    };
    c.run = [st]() -> int {
        auto f = gguf::File::open(st->path);
        if (!f) return report("info", f.error());
        const gguf::File& g = **f;
        fmt::print("file: {}\nGGUF version {}, alignment {}, {} metadata keys, {} tensors, data at offset {}\n\n",
                   st->path, g.version(), g.alignment(), g.metadata().size(), g.tensors().size(), g.data_offset());
        fmt::print("metadata:\n");
        for (const auto& [k, v] : g.metadata()) fmt::print("  {:<44} {}\n", k, gguf::value_to_string(v));
        std::map<std::string, std::pair<int, uint64_t>> hist;
        uint64_t total = 0, n_params = 0;
        for (const auto& t : g.tensors()) {
            auto& h = hist[std::string(dtype_name(t.type))];
            h.first++;
            h.second += t.nbytes;
            total += t.nbytes;
            n_params += t.n_elements();
        }
        fmt::print("\ntensors: {} ({:.2f} MiB, {:.2f} M values)\n", g.tensors().size(), double(total) / 1048576.0,
                   double(n_params) / 1e6);
        for (const auto& [name, h] : hist) fmt::print("  {:<8} {:>5} tensors {:>10.2f} MiB\n", name, h.first, double(h.second) / 1048576.0);
        fmt::print("\n  {:<32} {:<8} {:<18} {:>12} {:>12}\n", "name", "type", "shape", "offset", "bytes");
        size_t shown = 0;
        for (const auto& t : g.tensors()) {
            if (!st->all_tensors && shown++ >= 24) {
                fmt::print("  ... {} more (use --all)\n", g.tensors().size() - 24);
                break;
            }
            fmt::print("  {:<32} {:<8} {:<18} {:>12} {:>12}\n", t.name, dtype_name(t.type), t.shape_str(), t.offset, t.nbytes);
        }
        auto m = model::load_model(std::move(*f), st->path);
        if (!m) {
            fmt::print("\nnot loadable as a model: {}\n", m.error().message());
            return kExitOk;
        }
        const auto& hp = (*m)->hp;
        fmt::print("\nmodel: arch {}, n_vocab {}, n_ctx_train {}, n_embd {}, n_layer {}, n_head {}, n_head_kv {}, "
                   "head_dim {}, n_ff {}, rope_base {}, rms_eps {}\n",
                   hp.arch, hp.n_vocab, hp.n_ctx_train, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv, hp.head_dim,
                   hp.n_ff, hp.rope_base, hp.rms_eps);
        fmt::print("  attention {}, embedding scale {}, logit soft-cap {}{}\n", hp.causal ? "causal" : "bidirectional",
                   hp.embd_scale, hp.logit_softcap,
                   hp.mask_token >= 0 ? fmt::format(", mask token {}", hp.mask_token) : std::string());
        // Blocks, with runs of identical specs collapsed: "blocks 0-4: ...".
        auto describe = [](const model::LayerSpec& s) {
            return fmt::format("{}{}{}{} ffn, rope {} base {} scale {} dims {}, {}{}", s.qk_norm ? "q/k norm, " : "",
                               s.post_attn_norm ? "post-attn norm, " : "", s.post_ffn_norm ? "post-ffn norm, " : "",
                               model::ffn_act_name(s.act), model::rope_kind_name(s.rope.kind), s.rope.base,
                               s.rope.freq_scale, s.rope.n_rot, s.attn.causal ? "causal" : "bidirectional",
                               s.attn.window > 0 ? fmt::format(", window {}", s.attn.window) : std::string());
        };
        for (size_t l = 0; l < hp.layer.size();) {
            const std::string d = describe(hp.layer[l]);
            size_t e = l + 1;
            while (e < hp.layer.size() && describe(hp.layer[e]) == d) ++e;
            fmt::print("  block{} {}: {}\n", e - l > 1 ? "s" : "", e - l > 1 ? fmt::format("{}-{}", l, e - 1) : std::to_string(l), d);
            l = e;
        }
        return kExitOk;
    };
    return c;
}

}  // namespace strata::cli

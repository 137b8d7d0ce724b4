// GGUF LoRA reading (with llama.cpp's checks) and writing.
#include "adapters/gguf_lora.h"

#include <cstdio>
#include <cstring>
#include <map>

#include "adapters/gguf_writer.h"
#include "gguf/gguf.h"

namespace strata::adapters {

namespace {

// Decodes a 2-D LoRA tensor to float32 rows (F32/F16/BF16/Q8_0 and other dequantizable types).
Result<std::vector<float>> decode(const gguf::TensorInfo& t) {
    const auto info = dtype_info(uint32_t(t.type));
    if (!info || !info->can_dequantize) return unsupported("{}: tensor type {} is not supported", t.name, dtype_name(t.type));
    if (t.ne[0] % info->block_size != 0)
        return invalid_input("{}: row of {} values is not a multiple of the {} block size", t.name, t.ne[0], info->name);
    std::vector<float> v(size_t(t.ne[0] * t.ne[1]));
    for (uint64_t r = 0; r < t.ne[1]; ++r)
        dequantize_row(t.type, t.data + r * t.row_bytes(), &v[size_t(r * t.ne[0])], int64_t(t.ne[0]));
    return v;
}

}  // namespace

Result<LoraAdapter> parse_gguf_lora(const gguf::File& f, const ModelShape& shape, const std::string& what) {
    auto gtype = f.get_string("general.type");
    if (!gtype || *gtype != "adapter")
        return invalid_input("{}: general.type is {} (expected \"adapter\")", what,
                             gtype ? "\"" + *gtype + "\"" : "missing");
    auto atype = f.get_string("adapter.type");
    if (!atype || *atype != "lora")
        return unsupported("{}: adapter.type is {} (expected \"lora\")", what, atype ? "\"" + *atype + "\"" : "missing");
    auto arch = f.get_string("general.architecture");
    if (!arch) return invalid_input("{}: general.architecture is missing", what);
    if (*arch != shape.arch)
        return invalid_input("{}: general.architecture \"{}\" does not match the base model's \"{}\"", what, *arch,
                             shape.arch);
    const double alpha = f.find("adapter.lora.alpha") ? f.get_float_or("adapter.lora.alpha", 0.0) : 0.0;

    std::map<std::pair<int, int>, std::pair<const gguf::TensorInfo*, const gguf::TensorInfo*>> pairs;
    for (const auto& t : f.tensors()) {
        const std::string& n = t.name;
        auto ends = [&](const std::string& s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
        if (ends("_norm.weight")) continue;  // llama.cpp skips these as well
        const bool is_a = ends(".weight.lora_a"), is_b = ends(".weight.lora_b");
        if (!is_a && !is_b) return invalid_input("{}: {}: unexpected tensor (LoRA tensors end in .lora_a or .lora_b)", what, n);
        const std::string base = n.substr(0, n.size() - std::string(".weight.lora_a").size());
        if (base == "token_embd" || base == "output")
            return unsupported("{}: {}: LoRA on {} is not supported", what, n, base);
        int layer = -1;
        WeightRole role = WeightRole::kOther;
        if (base.rfind("blk.", 0) == 0) {
            const size_t dot = base.find('.', 4);
            const std::string idx = dot == std::string::npos ? "" : base.substr(4, dot - 4);
            if (!idx.empty() && idx.size() <= 6 && idx.find_first_not_of("0123456789") == std::string::npos) {
                layer = std::stoi(idx);
                for (WeightRole r : kRoles)
                    if (base.substr(dot + 1) == gguf_tensor_stem(r)) role = r;
            }
        }
        if (role == WeightRole::kOther) return unsupported("{}: {}: not a LoRA target of a decoder layer", what, n);
        if (layer >= shape.n_layer)
            return invalid_input("{}: {}: layer {} out of range (the base model has {} layers)", what, n, layer, shape.n_layer);
        auto& slot = pairs[{layer, role_index(role)}];
        (is_a ? slot.first : slot.second) = &t;
    }
    LoraAdapter ad;
    ad.source = what;
    for (auto& [key, ab] : pairs) {
        LoraModule m;
        m.layer = key.first;
        m.role = kRoles[key.second];
        const std::string nm = m.name() + ".weight";
        if (!ab.first) return invalid_input("{}: {}.lora_b has no matching lora_a", what, nm);
        if (!ab.second) return invalid_input("{}: {}.lora_a has no matching lora_b", what, nm);
        const gguf::TensorInfo &A = *ab.first, &B = *ab.second;
        if (A.n_dims != 2 || B.n_dims != 2) return invalid_input("{}: {}: lora_a and lora_b must be 2-D", what, nm);
        // llama.cpp's checks: base.ne[0] == a.ne[0], base.ne[1] == b.ne[1], a.ne[1] == b.ne[0].
        if (int64_t(A.ne[0]) != shape.d_in(m.role) || int64_t(B.ne[1]) != shape.d_out(m.role))
            return invalid_input("{}: {}: lora_a is {} and lora_b is {}, but the base weight is [{}, {}]", what, nm,
                                 A.shape_str(), B.shape_str(), shape.d_in(m.role), shape.d_out(m.role));
        if (A.ne[1] != B.ne[0])
            return invalid_input("{}: {}: rank mismatch: lora_a is {}, lora_b is {}", what, nm, A.shape_str(), B.shape_str());
        m.d_in = int64_t(A.ne[0]);
        m.d_out = int64_t(B.ne[1]);
        m.rank = int64_t(A.ne[1]);
        if (m.rank < 1) return invalid_input("{}: {}: rank 0", what, nm);
        auto a = decode(A);
        if (!a) return a.error().with_context(what);
        auto b = decode(B);
        if (!b) return b.error().with_context(what);
        m.a = std::move(*a);
        m.b = std::move(*b);
        m.scale = alpha == 0 ? 1.f : float(alpha / double(m.rank));
        ad.modules.push_back(std::move(m));
    }
    if (ad.modules.empty()) return invalid_input("{}: no LoRA tensors", what);
    ad.sort();
    STRATA_TRY(check_against(ad, shape).with_context(what));
    return ad;
}

Result<LoraAdapter> read_gguf_lora(const std::string& path, const ModelShape& shape) {
    auto f = gguf::File::open(path);
    if (!f) return f.error().with_context(path);
    return parse_gguf_lora(**f, shape, path);
}

std::vector<uint8_t> serialize_gguf_lora(const LoraAdapter& ad, const ModelShape& shape, bool f16) {
    bool uniform = !ad.modules.empty();
    for (const auto& m : ad.modules)
        uniform = uniform && m.rank == ad.modules[0].rank && m.scale == ad.modules[0].scale;
    GgufWriter w;
    w.add_string("general.architecture", shape.arch);
    w.add_string("general.type", "adapter");
    w.add_string("adapter.type", "lora");
    w.add_f32("adapter.lora.alpha", uniform ? ad.modules[0].scale * float(ad.modules[0].rank) : 0.f);
    auto bytes = [&](const std::vector<float>& v, float mul) {
        std::vector<uint8_t> o(v.size() * (f16 ? 2 : 4));
        for (size_t i = 0; i < v.size(); ++i) {
            const float x = v[i] * mul;
            if (f16) {
                const uint16_t h = fp32_to_fp16(x);
                std::memcpy(&o[2 * i], &h, 2);
            } else {
                std::memcpy(&o[4 * i], &x, 4);
            }
        }
        return o;
    };
    const DType t = f16 ? DType::F16 : DType::F32;
    for (const auto& m : ad.modules) {
        const std::string n = m.name() + ".weight";
        w.add_tensor(n + ".lora_a", t, {uint64_t(m.d_in), uint64_t(m.rank)}, bytes(m.a, 1.f));
        w.add_tensor(n + ".lora_b", t, {uint64_t(m.rank), uint64_t(m.d_out)}, bytes(m.b, uniform ? 1.f : m.scale));
    }
    return w.serialize();
}

Status write_gguf_lora(const std::string& path, const LoraAdapter& ad, const ModelShape& shape, bool f16) {
    const std::vector<uint8_t> b = serialize_gguf_lora(ad, shape, f16);
    FILE* fp = std::fopen(path.c_str(), "wb");
    if (!fp) return io_error("{}: cannot create", path);
    const size_t n = std::fwrite(b.data(), 1, b.size(), fp);
    const bool ok = std::fclose(fp) == 0 && n == b.size();
    if (!ok) return io_error("{}: write failed", path);
    return ok_status();
}

}  // namespace strata::adapters

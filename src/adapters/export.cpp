// Export: dequantize each projection, add the dense LoRA deltas, requantize, write GGUF.
#include "adapters/export.h"

#include <cstring>
#include <map>

#include "adapters/gguf_writer.h"
#include "model/model.h"

namespace strata::adapters {

namespace {

bool writable(DType t) {
    return t == DType::F32 || t == DType::F16 || t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_1;
}

std::vector<uint8_t> encode_rows(const std::vector<float>& w, int64_t rows, int64_t cols, DType t) {
    const size_t rb = dtype_row_bytes(t, uint64_t(cols));
    std::vector<uint8_t> out(rb * size_t(rows));
    for (int64_t r = 0; r < rows; ++r) {
        const float* src = &w[size_t(r * cols)];
        uint8_t* dst = &out[size_t(r) * rb];
        switch (t) {
            case DType::F32: std::memcpy(dst, src, size_t(cols) * 4); break;
            case DType::F16:
                for (int64_t i = 0; i < cols; ++i) {
                    const uint16_t h = fp32_to_fp16(src[i]);
                    std::memcpy(dst + 2 * i, &h, 2);
                }
                break;
            case DType::Q8_0: quantize_row_q8_0(src, dst, cols); break;
            case DType::Q4_0: quantize_row_q4_0(src, dst, cols); break;
            case DType::Q4_1: quantize_row_q4_1(src, dst, cols); break;
            default: break;
        }
    }
    return out;
}

// llama.cpp's general.file_type (LLAMA_FTYPE_*) for a uniform projection type.
uint32_t file_type(DType t) {
    switch (t) {
        case DType::F32: return 0;
        case DType::F16: return 1;
        case DType::Q4_0: return 2;
        case DType::Q4_1: return 3;
        case DType::Q8_0: return 7;
        default: return 0;
    }
}

}  // namespace

Result<std::optional<DType>> parse_export_type(const std::string& name) {
    if (name.empty()) return std::optional<DType>();
    static const std::pair<const char*, DType> kTypes[] = {
        {"f32", DType::F32}, {"f16", DType::F16}, {"q8_0", DType::Q8_0}, {"q4_0", DType::Q4_0}, {"q4_1", DType::Q4_1}};
    for (auto [n, t] : kTypes)
        if (name == n) return std::optional<DType>(t);
    return invalid_input("--type: unknown type \"{}\" (known: f32, f16, q8_0, q4_0, q4_1)", name);
}

Status export_merged(const model::Model& base, const std::vector<ScaledAdapter>& loras, const std::string& out,
                     std::optional<DType> type, const std::function<void(int64_t, int64_t)>& progress) {
    const gguf::File& f = *base.file;
    const ModelShape shape = model_shape(base);
    for (const auto& l : loras) STRATA_TRY(check_against(*l.adapter, shape).with_context(l.adapter->source));
    if (type && !writable(*type)) return unsupported("--type: cannot write {}", dtype_name(*type));
    // Projection weights by tensor name -> (layer, role).
    std::map<std::string, std::pair<int, WeightRole>> proj;
    for (int64_t l = 0; l < base.hp.n_layer; ++l)
        for (WeightRole r : kRoles)
            proj["blk." + std::to_string(l) + "." + gguf_tensor_stem(r) + ".weight"] = {int(l), r};
    GgufWriter w;
    for (const auto& [key, v] : f.metadata()) {
        if (key == "general.alignment" || key == "general.file_type") continue;  // we write 32-byte alignment
        w.add_value(key, v);
    }
    if (type) w.add_u32("general.file_type", file_type(*type));
    const int64_t total = int64_t(f.tensors().size());
    int64_t done = 0;
    for (const auto& t : f.tensors()) {
        auto it = proj.find(t.name);
        if (it == proj.end()) {
            w.add_tensor(t.name, t.type, std::vector<uint64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                         std::vector<uint8_t>(t.data, t.data + t.nbytes));
        } else {
            const auto [layer, role] = it->second;
            const int64_t cols = int64_t(t.ne[0]), rows = int64_t(t.ne[1]);
            std::vector<float> wf(size_t(rows * cols));
            for (int64_t r = 0; r < rows; ++r)
                if (!dequantize_row(t.type, t.data + size_t(r) * t.row_bytes(), &wf[size_t(r * cols)], cols))
                    return unsupported("{}: cannot dequantize type {}", t.name, dtype_name(t.type));
            bool touched = false;
            for (const auto& l : loras) {
                const LoraModule* m = l.adapter->find(layer, role);
                if (!m) continue;
                const std::vector<float> d = dense_delta(*m);
                for (size_t i = 0; i < d.size(); ++i) wf[i] += l.scale * d[i];
                touched = true;
            }
            const DType ot = type ? *type : writable(t.type) ? t.type : DType::Q8_0;
            if (!touched && ot == t.type) {
                w.add_tensor(t.name, t.type, {t.ne[0], t.ne[1]}, std::vector<uint8_t>(t.data, t.data + t.nbytes));
            } else {
                const auto info = dtype_info_checked(ot);
                if (cols % int64_t(info.block_size) != 0)
                    return invalid_input("{}: {} columns are not a multiple of the {} block size", t.name, cols, info.name);
                w.add_tensor(t.name, ot, {t.ne[0], t.ne[1]}, encode_rows(wf, rows, cols, ot));
            }
        }
        if (progress) progress(++done, total);
    }
    return w.write(out);
}

}  // namespace strata::adapters

// Model loading: the architecture registry and the tensor binding helpers that check
// every shape and type against what the architecture expects.
#include "model/model.h"

#include <functional>

#include "tensor/cpu/kernels.h"

namespace strata::model {

Result<std::unique_ptr<Model>> load_llama(const gguf::File& f);  // arch/llama.cpp

namespace {
struct ArchEntry {
    const char* name;
    Result<std::unique_ptr<Model>> (*load)(const gguf::File&);
};
// The registry: one line per architecture.
constexpr ArchEntry kArchitectures[] = {
    {"llama", load_llama},
};
}  // namespace

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
    size_t n = output.nbytes();
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

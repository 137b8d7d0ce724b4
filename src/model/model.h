// A loaded model: hyper-parameters, weights bound to the mapped GGUF, and the
// architecture that produced them. Forward computation lives in forward.h (Context).
// Architectures are plug-ins (model/arch/<name>.cpp) listed in model.cpp's registry.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"
#include "model/hooks.h"

namespace strata::model {

struct HParams {
    std::string arch;
    int64_t n_vocab = 0;
    int64_t n_ctx_train = 0;
    int64_t n_embd = 0;
    int64_t n_layer = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0;
    int64_t n_ff = 0;
    int64_t n_rot = 0;  // rotated dims per head
    float rope_base = 10000.f;
    float rms_eps = 1e-5f;
};

// A 2-D weight [n_rows][n_cols] (GGUF ne = [n_cols, n_rows]) in its stored type.
struct Weight {
    std::string name;
    int layer = -1;  // block index, -1 outside blocks
    WeightRole role = WeightRole::kOther;
    DType type = DType::F32;
    const uint8_t* data = nullptr;
    int64_t n_cols = 0, n_rows = 0;
    size_t row_bytes = 0;
    size_t nbytes() const { return row_bytes * size_t(n_rows); }
};

struct LayerWeights {
    std::vector<float> attn_norm, ffn_norm;  // [n_embd]
    Weight wq, wk, wv, wo;                   // [n_head*hd][n_embd], [n_kv*hd][n_embd], .., [n_embd][n_head*hd]
    Weight gate, up, down;                   // [n_ff][n_embd], [n_ff][n_embd], [n_embd][n_ff]
};

struct Model {
    HParams hp;
    Weight tok_embd;  // [n_vocab][n_embd]
    Weight output;    // [n_vocab][n_embd]; same as tok_embd when tied
    std::vector<float> output_norm;
    std::vector<LayerWeights> layers;
    std::unique_ptr<gguf::File> file;
    std::string path;

    size_t weight_bytes() const;  // bytes of all matrix weights read per token
};

// Opens the GGUF, picks the architecture from general.architecture and binds weights.
// Errors name the file, the tensor and the problem.
Result<std::unique_ptr<Model>> load_model(const std::string& path);
Result<std::unique_ptr<Model>> load_model(std::unique_ptr<gguf::File> file, const std::string& path);

// Names of the architectures we can load, for error messages and `strata info`.
std::vector<std::string> architecture_names();

// Binding helpers shared by architectures.
Result<Weight> bind_matrix(const gguf::File& f, const std::string& name, int64_t n_cols, int64_t n_rows);
Result<std::vector<float>> load_vector(const gguf::File& f, const std::string& name, int64_t n);

}  // namespace strata::model

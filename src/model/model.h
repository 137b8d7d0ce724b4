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

// What one block does, read from the GGUF by the architecture's loader (docs/design.md,
// "Model layer"). The forward pass builds each block from these options; a feature the
// engine lacks is refused by the loader with its key's name, never ignored.
enum class FfnAct { kSilu, kGeluTanh };  // gated: act(gate) * up
enum class RopeKind { kNone, kNorm, kNeox };  // kNorm rotates adjacent pairs, kNeox halves
const char* ffn_act_name(FfnAct a);
const char* rope_kind_name(RopeKind k);

struct RopeSpec {
    RopeKind kind = RopeKind::kNorm;
    float base = 10000.f;
    float freq_scale = 1.f;  // linear scaling: angle = freq_scale * pos * base^(-2i/n_rot)
    int64_t n_rot = 0;       // rotated dims per head (the first n_rot)
};

struct AttnSpec {
    bool causal = true;
    int64_t window = 0;   // > 0: a query at p sees keys p - window < j <= p (sliding window)
    float q_scale = 1.f;  // multiplies Q after RoPE (Gemma), before attention
    float kq_scale = 0;   // multiplies the scores; 0 = 1/sqrt(head_dim)
};

struct LayerSpec {
    bool qk_norm = false;         // per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3)
    bool post_attn_norm = false;  // RMSNorm of the attention output before the residual add
    bool post_ffn_norm = false;   // RMSNorm of the FFN output before the residual add
    FfnAct act = FfnAct::kSilu;
    RopeSpec rope;
    AttnSpec attn;
};

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
    float embd_scale = 1.f;     // token embeddings are multiplied by this (Gemma: sqrt(n_embd))
    float logit_softcap = 0.f;  // > 0: logits = c * tanh(logits / c)
    bool causal = true;         // false: every position sees the whole sequence (LLaDA)
    int32_t mask_token = -1;    // masked-diffusion models: tokenizer.ggml.mask_token_id
    std::vector<LayerSpec> layer;  // one per block
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
    std::vector<float> attn_q_norm, attn_k_norm;       // [head_dim] when LayerSpec::qk_norm
    std::vector<float> attn_post_norm, ffn_post_norm;  // [n_embd] when post_attn/ffn_norm
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
// Reads the hyper-parameters every decoder-only architecture shares under "<arch>." keys
// (sizes, heads, head size, RoPE base and dims, RMS epsilon) and the vocab size from
// token_embd, with range checks; fills hp.layer with `defaults` per block.
Status read_common_hparams(const gguf::File& f, const std::string& arch, const LayerSpec& defaults, HParams* hp);
// Binds token_embd / output / output_norm and every block's llama-layout tensors
// (attn_norm, attn_q/k/v/output, ffn_norm, ffn_gate/up/down) plus the optional tensors
// the layer specs ask for; refuses biases and any tensor in a block it does not know.
Status bind_standard_tensors(const gguf::File& f, Model* m);
// Refuses a key whose presence would change the computation in a way we do not implement.
Status refuse_key(const gguf::File& f, const std::string& key, const std::string& why);
Result<Weight> bind_matrix(const gguf::File& f, const std::string& name, int64_t n_cols, int64_t n_rows);
Result<std::vector<float>> load_vector(const gguf::File& f, const std::string& name, int64_t n);

}  // namespace strata::model

// LoRA adapters in memory: one (A, B, scale) per adapted projection, the base-model shape
// they are checked against, and the helpers every reader, writer and merge method shares.
// File formats live in safetensors.h / peft.h / gguf_lora.h; merging in merge.h; applying
// at run time in runtime.h. Layout choice: B rows are kept in the *GGUF* (llama.cpp) order,
// i.e. q/k rows permuted for interleaved RoPE (shared/specs/gguf-and-llama.md §3.4), because
// that is the order the engine's matmuls produce; the PEFT reader/writer convert at the
// file boundary. Every merge method is row-permutation equivariant, so the choice does not
// change merge results.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/hooks.h"

namespace strata::model { struct Model; }

namespace strata::adapters {

using model::WeightRole;

// The seven projection types in a fixed order (index = role_index()).
constexpr WeightRole kRoles[] = {WeightRole::kQ, WeightRole::kK,    WeightRole::kV,   WeightRole::kO,
                                 WeightRole::kGate, WeightRole::kUp, WeightRole::kDown};
constexpr int kNumRoles = 7;
int role_index(WeightRole r);             // 0..6, -1 for others
const char* peft_module_path(WeightRole r);   // "self_attn.q_proj", "mlp.down_proj", ...
const char* gguf_tensor_stem(WeightRole r);   // "attn_q", "ffn_down", ...

// What the adapter must fit: taken from the base model (model_shape()) or set by tests.
struct ModelShape {
    std::string arch = "llama";
    int64_t n_layer = 0, n_embd = 0, n_ff = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
    int64_t d_out(WeightRole r) const;
    int64_t d_in(WeightRole r) const;
};
ModelShape model_shape(const model::Model& m);

struct LoraModule {
    int layer = 0;
    WeightRole role = WeightRole::kQ;
    int64_t d_out = 0, d_in = 0, rank = 0;
    float scale = 1.f;     // effective factor: alpha/r, alpha/sqrt(r) (rslora), or 1 for merges
    std::vector<float> a;  // [rank][d_in]
    std::vector<float> b;  // [d_out][rank], rows in GGUF order (see above)
    std::string name() const;  // "blk.3.attn_q" — used in every error message
};

struct LoraAdapter {
    std::string source;       // file or directory it came from
    std::string base_model;   // base_model_name_or_path, copied through on write
    std::vector<LoraModule> modules;  // sorted by (layer, role), at most one per pair

    const LoraModule* find(int layer, WeightRole r) const;
    int64_t max_rank() const;
    void sort();
};

// Checks every module against the base shape: layer in range, d_in/d_out match the base
// tensor, A/B sizes agree with the rank. Errors name the tensor ("blk.3.attn_k: ...").
Status check_against(const LoraAdapter& ad, const ModelShape& shape);

// The converter's q/k row permutation (convert_hf_to_gguf.py LlamaModel.permute) applied
// to a [d_out][cols] row-major matrix: gguf_row[h*hd + 2j + i] = hf_row[h*hd + i*hd/2 + j].
void permute_rows_hf_to_gguf(std::vector<float>& m, int64_t d_out, int64_t cols, int64_t n_head);
void permute_rows_gguf_to_hf(std::vector<float>& m, int64_t d_out, int64_t cols, int64_t n_head);
// Heads to use for a role's rows (n_head for q, n_head_kv for k, 0 = not permuted).
int64_t permuted_heads(const ModelShape& s, WeightRole r);

// Dense update s * B A, [d_out][d_in], float32 (accumulated in double per entry run).
std::vector<float> dense_delta(const LoraModule& m);

}  // namespace strata::adapters

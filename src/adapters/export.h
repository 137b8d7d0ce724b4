// `strata export`: bakes LoRA adapters into the base weights, W' = W0 + sum_k u_k s_k B_k A_k,
// and writes a complete GGUF model. The seven projection matrices of every layer are written
// in the chosen type (requantized from f32 with tensor/dtype.h's reference quantizers);
// everything else (embeddings, norms, tokenizer metadata) is copied unchanged.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "adapters/lora.h"
#include "tensor/dtype.h"

namespace strata::model { struct Model; }

namespace strata::adapters {

struct ScaledAdapter {
    const LoraAdapter* adapter;
    float scale;
};

// "f32", "f16", "q8_0", "q4_0", "q4_1", or "" = keep each tensor's type when we can write it
// (else q8_0). Errors list the known names.
Result<std::optional<DType>> parse_export_type(const std::string& name);

Status export_merged(const model::Model& base, const std::vector<ScaledAdapter>& loras, const std::string& out,
                     std::optional<DType> type, const std::function<void(int64_t, int64_t)>& progress);

}  // namespace strata::adapters

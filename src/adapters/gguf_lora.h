// llama.cpp LoRA adapter GGUF files (shared/specs/tada.md §4.4, gguf-and-llama.md §7):
// general.type = "adapter", adapter.type = "lora", adapter.lora.alpha, and per adapted
// weight X: X.lora_a with ne = [d_in, r] (bytes of PEFT's lora_A) and X.lora_b with
// ne = [r, d_out]. Rows of q/k lora_b are already in GGUF order, so no permutation here.
// Scale = alpha / r (r = b.ne[0]), or 1 when alpha is 0.
#pragma once

#include <string>

#include "adapters/lora.h"

namespace strata::gguf { class File; }

namespace strata::adapters {

Result<LoraAdapter> read_gguf_lora(const std::string& path, const ModelShape& shape);
Result<LoraAdapter> parse_gguf_lora(const gguf::File& f, const ModelShape& shape, const std::string& what);

// Uniform rank and scale: alpha = scale * r and B unchanged; otherwise each scale is folded
// into B and alpha = 0 (factor 1), as the spec's conversion rules say. f16 stores F16 data.
Status write_gguf_lora(const std::string& path, const LoraAdapter& ad, const ModelShape& shape, bool f16 = false);
std::vector<uint8_t> serialize_gguf_lora(const LoraAdapter& ad, const ModelShape& shape, bool f16 = false);

}  // namespace strata::adapters

// PEFT LoRA adapter directories (shared/specs/tada.md §4.2): adapter_config.json plus
// adapter_model.safetensors. Reading validates the config (LORA only; DoRA, lora_bias,
// target_parameters, modules_to_save and fan_in_fan_out are rejected because a merge would
// silently be wrong), resolves rank_pattern/alpha_pattern per module with PEFT's
// `(.*\.)?(KEY)$` rule, checks every tensor against the base shape, and permutes q/k lora_B
// rows into GGUF order. Writing does the inverse and writes the merged-adapter config.
#pragma once

#include <string>

#include "adapters/lora.h"

namespace strata::adapters {

// `path`: the adapter directory, its adapter_config.json, or its .safetensors file.
Result<LoraAdapter> read_peft(const std::string& path, const ModelShape& shape);

// Parses the config and tensors of an already loaded directory image (tests use this to
// feed crafted files). `what` names the source in errors.
Result<LoraAdapter> parse_peft(const std::string& config_json, const struct StFile& tensors,
                               const ModelShape& shape, const std::string& what);

// Writes dir/adapter_config.json and dir/adapter_model.safetensors (creates dir). When all
// modules share one rank and one scale, B is written unchanged with lora_alpha = scale * r
// (so PEFT -> GGUF -> PEFT is bit-exact); otherwise each scale is folded into B and
// lora_alpha = r (scale 1), with rank_pattern/alpha_pattern for modules of other ranks.
Status write_peft(const std::string& dir, const LoraAdapter& ad, const ModelShape& shape, bool f16 = false);

// The PEFT module name, e.g. "model.layers.3.self_attn.q_proj".
std::string peft_module_name(int layer, WeightRole r);

}  // namespace strata::adapters

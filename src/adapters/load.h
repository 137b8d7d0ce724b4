// Adapter files by path: a PEFT directory (or its adapter_config.json / .safetensors) or a
// llama.cpp GGUF LoRA (*.gguf), plus the "FILE[:SCALE]" syntax of --lora and the writer
// that emits both formats for a merged adapter.
#pragma once

#include <string>
#include <string_view>

#include "adapters/lora.h"

namespace strata::adapters {

struct LoraSpec {
    std::string path;
    float scale = 1.f;
};
// "FILE" or "FILE:SCALE"; a suffix that is not a number is part of the path.
Result<LoraSpec> parse_lora_spec(std::string_view arg);

Result<LoraAdapter> load_adapter(const std::string& path, const ModelShape& shape);

// OUT ending in .gguf: a GGUF LoRA only. Otherwise OUT is a PEFT directory, and a GGUF copy
// is written next to it as OUT/adapter.gguf, so every merge is loadable in both formats.
Status save_adapter(const std::string& out, const LoraAdapter& ad, const ModelShape& shape, bool f16 = false);

}  // namespace strata::adapters

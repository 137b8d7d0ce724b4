// A small GGUF v3 writer (shared/specs/gguf-and-llama.md §1): metadata, tensor descriptors
// and 32-byte aligned data, little-endian. Used for LoRA adapter files (gguf_lora.h) and for
// `strata export` (base + LoRA baked in). The reader in gguf/ reads back what this writes;
// gguf_lora_test.cpp round-trips through it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"

namespace strata::adapters {

class GgufWriter {
public:
    void add_string(const std::string& key, const std::string& v);
    void add_u32(const std::string& key, uint32_t v);
    void add_f32(const std::string& key, float v);
    // Copies any value read by gguf::File (scalars, strings, arrays).
    void add_value(const std::string& key, const gguf::Value& v);
    // ne[0] is the contiguous dimension; data must hold exactly the bytes of the tensor.
    void add_tensor(const std::string& name, DType type, std::vector<uint64_t> ne, std::vector<uint8_t> data);

    std::vector<uint8_t> serialize() const;
    Status write(const std::string& path) const;

private:
    struct Tensor {
        std::string name;
        DType type;
        std::vector<uint64_t> ne;
        std::vector<uint8_t> data;
    };
    std::vector<uint8_t> kv_;  // serialized key/value pairs
    uint64_t n_kv_ = 0;
    std::vector<Tensor> tensors_;
};

}  // namespace strata::adapters

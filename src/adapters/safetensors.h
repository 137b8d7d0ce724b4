// safetensors reader and writer (shared/specs/tada.md §4.1): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the
// data. The reader checks the header length limit before allocating, every dtype/shape/size,
// bounds, and that the tensors tile the data area exactly (no gaps, no overlaps); errors
// name the file and the tensor. Values are decoded to float32 (F32, F16, BF16, F64).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace strata::adapters {

struct StTensor {
    std::string dtype;           // "F32", "F16", ...
    std::vector<int64_t> shape;
    std::vector<float> data;     // decoded, row-major
};

struct StFile {
    std::map<std::string, StTensor> tensors;
    std::map<std::string, std::string> metadata;
};

constexpr uint64_t kMaxSafetensorsHeader = 100u << 20;  // spec §4.1: reject headers over 100 MB

// `what` names the source in errors (a path, or "buffer").
Result<StFile> parse_safetensors(const uint8_t* data, size_t size, const std::string& what);
Result<StFile> read_safetensors(const std::string& path);

// Writes F32 (or F16 when f16) tensors in name order, header padded with spaces to 8 bytes.
Status write_safetensors(const std::string& path, const StFile& f, bool f16 = false);
std::vector<uint8_t> serialize_safetensors(const StFile& f, bool f16 = false);

}  // namespace strata::adapters

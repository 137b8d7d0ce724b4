// Function vectors (shared/specs/function-vectors.md): the FVEC v1 blob (spec §5.1), the
// model identity it is checked against, and the SHA-256 / CRC32 it needs.
//
// parse_fvec() is the single "from bytes" entry point (files, HTTP requests, fuzzers): it
// validates every field against the buffer size and fixed limits before it allocates, and
// never trusts a count it has not bounded by the bytes that remain.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace strata::model {
struct Model;
}

namespace strata::fv {

using Sha256 = std::array<uint8_t, 32>;
Sha256 sha256(std::span<const uint8_t> data);
std::string hex(std::span<const uint8_t> bytes);
uint32_t crc32(std::span<const uint8_t> data);  // IEEE 802.3 (zlib's crc32)

// What a blob must match: the SHA-256 of the model's GGUF tensor-data section and the
// attention geometry.
struct ModelIdentity {
    Sha256 hash{};
    uint32_t hidden_size = 0, n_layers = 0, n_heads = 0, head_dim = 0;
};
// Hashes the tensor data (about 0.3 s per 100 MB); compute once per loaded model.
Result<ModelIdentity> model_identity(const model::Model& m);

enum class ValueType : uint8_t { kF32 = 0, kF16 = 1, kBF16 = 2 };
// Which positions get the vector, per eval call (see inject.h).
enum class PositionPolicy : uint8_t { kLastPrompt = 0, kLastAndGenerated = 1, kAll = 2 };
// Where aggregated entries are added: block output (Todd) or attention output (before the MLP).
enum class HookPoint : uint8_t { kBlockOutput = 0, kAttentionOutput = 1 };

struct FvEntry {
    int layer = 0;
    int head = -1;              // distributed entries only; -1 for aggregated
    std::vector<float> values;  // aggregated: hidden_size; distributed: head_dim (mean head output)
    float score = 0.f;          // distributed with has_head_scores
};

struct FunctionVector {
    bool distributed = false;
    bool has_scores = false;
    Sha256 model_hash{};
    uint32_t hidden_size = 0, n_layers = 0, n_heads = 0, head_dim = 0;
    ValueType dtype = ValueType::kF16;
    PositionPolicy policy = PositionPolicy::kLastAndGenerated;
    HookPoint hook_point = HookPoint::kBlockOutput;
    float scale = 1.f;
    std::string task;  // optional
    std::vector<FvEntry> entries;

    // Stable identity for cache keys: hex SHA-256 of the serialized blob (set by parse_fvec
    // and serialize_fvec).
    std::string id;
};

// Limits checked before allocating.
constexpr uint32_t kMaxHidden = 1u << 16, kMaxLayers = 1024, kMaxHeads = 1024, kMaxHeadDim = 1024;
constexpr uint32_t kMaxEntries = 1u << 16;
constexpr size_t kMaxTaskName = 256;
constexpr size_t kHeaderBytes = 68;

// Structural parse: magic, version, flags, sizes, enum values, entry bounds and order,
// finite values, CRC. Does not compare against a model.
Result<FunctionVector> parse_fvec(std::span<const uint8_t> bytes);
// Structural parse plus check_model (the usual entry point).
Result<FunctionVector> parse_fvec(std::span<const uint8_t> bytes, const ModelIdentity& model);
// The blob's model hash and sizes against the model's; errors say what differs.
Status check_model(const FunctionVector& fv, const ModelIdentity& model);
// Reads a file (size-capped) and parses it against the model; errors name the path.
Result<FunctionVector> load_fvec(const std::string& path, const ModelIdentity& model);

// Serializes (values rounded to fv.dtype) and sets fv.id. The entries must be valid
// (layer/head in range, value counts right); errors say which is not.
Result<std::vector<uint8_t>> serialize_fvec(FunctionVector& fv);
Status save_fvec(const std::string& path, FunctionVector& fv);

const char* policy_name(PositionPolicy p);
const char* value_type_name(ValueType t);

}  // namespace strata::fv

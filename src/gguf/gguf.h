// GGUF v2/v3 reader: maps the file, parses metadata and tensor descriptors, and checks
// every count, length, type, shape and offset against the file before anything is used
// (shared/specs/gguf-and-llama.md §1). Nothing here aborts on bad input: open() returns
// an error naming the field and the offending value.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace strata::gguf {

enum class ValueType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8,
    ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view value_type_name(ValueType t);

// One metadata value. Scalars are widened into the matching field; arrays of numbers go
// into ints/floats, arrays of strings into strs.
struct Value {
    ValueType type = ValueType::U8;
    ValueType elem_type = ValueType::U8;  // arrays only
    uint64_t n_elems = 0;                 // arrays only
    int64_t i = 0;                        // integer and bool scalars (u64 stored bitwise)
    double f = 0;                         // float scalars
    std::string s;
    std::vector<int64_t> ints;
    std::vector<double> floats;
    std::vector<std::string> strs;

    bool is_int() const;
    bool is_float() const { return type == ValueType::F32 || type == ValueType::F64; }
};

struct TensorInfo {
    std::string name;
    uint32_t n_dims = 0;
    std::array<uint64_t, 4> ne{1, 1, 1, 1};  // ne[0] contiguous
    DType type = DType::F32;
    uint64_t offset = 0;  // relative to data section
    uint64_t nbytes = 0;
    const uint8_t* data = nullptr;  // into the mapping

    uint64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    uint64_t row_bytes() const { return dtype_row_bytes(type, ne[0]); }
    std::string shape_str() const;
};

// Limits checked before allocating (a crafted header must not make us allocate GBs).
struct Limits {
    uint64_t max_tensors = 1 << 16;
    uint64_t max_kv = 1 << 16;
    uint64_t max_string_bytes = 1 << 24;
    uint64_t max_array_elems = 1 << 24;
};

class File {
public:
    ~File();
    File(const File&) = delete;
    File& operator=(const File&) = delete;

    // Maps and validates. The path must be a regular readable file.
    static Result<std::unique_ptr<File>> open(const std::string& path, Limits limits = {});
    // Parses an in-memory image (tests, fuzzing). The buffer must outlive the File.
    static Result<std::unique_ptr<File>> from_memory(const uint8_t* data, size_t size,
                                                     Limits limits = {});

    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    uint64_t file_size() const { return size_; }
    const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
    const std::vector<TensorInfo>& tensors() const { return tensors_; }

    const Value* find(std::string_view key) const;
    const TensorInfo* find_tensor(std::string_view name) const;

    // Typed accessors: errors name the key and what was found.
    Result<std::string> get_string(std::string_view key) const;
    Result<int64_t> get_int(std::string_view key) const;  // any integer type, widened
    Result<double> get_float(std::string_view key) const;  // F32/F64 (ints accepted)
    Result<bool> get_bool(std::string_view key) const;
    int64_t get_int_or(std::string_view key, int64_t dflt) const;
    double get_float_or(std::string_view key, double dflt) const;
    bool get_bool_or(std::string_view key, bool dflt) const;

private:
    File() = default;
    Status parse(Limits limits);

    const uint8_t* base_ = nullptr;
    size_t size_ = 0;
    void* map_ = nullptr;  // non-null when we own an mmap
    uint32_t version_ = 0;
    uint32_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, Value>> kv_;
    std::map<std::string, size_t, std::less<>> kv_index_;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, size_t, std::less<>> tensor_index_;
};

// A human-readable rendering of a value (arrays abbreviated), for `strata info`.
std::string value_to_string(const Value& v, size_t max_elems = 8);

}  // namespace strata::gguf

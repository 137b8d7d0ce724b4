// GGUF serialization: header, key/values, tensor infos, zero padding to the alignment, data.
#include "adapters/gguf_writer.h"

#include <cstring>
#include <fstream>

namespace strata::adapters {

namespace {

constexpr uint64_t kAlign = 32;

template <typename T>
void put(std::vector<uint8_t>& o, T v) {
    const size_t n = o.size();
    o.resize(n + sizeof(T));
    std::memcpy(o.data() + n, &v, sizeof(T));
}
void put_str(std::vector<uint8_t>& o, const std::string& s) {
    put<uint64_t>(o, s.size());
    o.insert(o.end(), s.begin(), s.end());
}
// One scalar of type t whose value is in (i, f, s).
void put_scalar(std::vector<uint8_t>& o, gguf::ValueType t, int64_t i, double f, const std::string& s) {
    using VT = gguf::ValueType;
    switch (t) {
        case VT::U8: put<uint8_t>(o, uint8_t(i)); break;
        case VT::I8: put<int8_t>(o, int8_t(i)); break;
        case VT::U16: put<uint16_t>(o, uint16_t(i)); break;
        case VT::I16: put<int16_t>(o, int16_t(i)); break;
        case VT::U32: put<uint32_t>(o, uint32_t(i)); break;
        case VT::I32: put<int32_t>(o, int32_t(i)); break;
        case VT::F32: put<float>(o, float(f)); break;
        case VT::BOOL: put<uint8_t>(o, i ? 1 : 0); break;
        case VT::STRING: put_str(o, s); break;
        case VT::U64: put<uint64_t>(o, uint64_t(i)); break;
        case VT::I64: put<int64_t>(o, i); break;
        case VT::F64: put<double>(o, f); break;
        case VT::ARRAY: break;  // nested arrays are not produced by the reader
    }
}

}  // namespace

void GgufWriter::add_string(const std::string& key, const std::string& v) {
    put_str(kv_, key);
    put<uint32_t>(kv_, uint32_t(gguf::ValueType::STRING));
    put_str(kv_, v);
    ++n_kv_;
}

void GgufWriter::add_u32(const std::string& key, uint32_t v) {
    put_str(kv_, key);
    put<uint32_t>(kv_, uint32_t(gguf::ValueType::U32));
    put<uint32_t>(kv_, v);
    ++n_kv_;
}

void GgufWriter::add_f32(const std::string& key, float v) {
    put_str(kv_, key);
    put<uint32_t>(kv_, uint32_t(gguf::ValueType::F32));
    put<float>(kv_, v);
    ++n_kv_;
}

void GgufWriter::add_value(const std::string& key, const gguf::Value& v) {
    put_str(kv_, key);
    put<uint32_t>(kv_, uint32_t(v.type));
    if (v.type == gguf::ValueType::ARRAY) {
        put<uint32_t>(kv_, uint32_t(v.elem_type));
        put<uint64_t>(kv_, v.n_elems);
        for (uint64_t k = 0; k < v.n_elems; ++k) {
            const size_t i = size_t(k);
            put_scalar(kv_, v.elem_type, i < v.ints.size() ? v.ints[i] : 0, i < v.floats.size() ? v.floats[i] : 0,
                       i < v.strs.size() ? v.strs[i] : std::string());
        }
    } else {
        put_scalar(kv_, v.type, v.i, v.f, v.s);
    }
    ++n_kv_;
}

void GgufWriter::add_tensor(const std::string& name, DType type, std::vector<uint64_t> ne, std::vector<uint8_t> data) {
    tensors_.push_back({name, type, std::move(ne), std::move(data)});
}

std::vector<uint8_t> GgufWriter::serialize() const {
    std::vector<uint8_t> o;
    put<uint32_t>(o, 0x46554747u);  // "GGUF"
    put<uint32_t>(o, 3);
    put<uint64_t>(o, tensors_.size());
    put<uint64_t>(o, n_kv_);
    o.insert(o.end(), kv_.begin(), kv_.end());
    uint64_t off = 0;
    for (const auto& t : tensors_) {
        put_str(o, t.name);
        put<uint32_t>(o, uint32_t(t.ne.size()));
        for (uint64_t d : t.ne) put<uint64_t>(o, d);
        put<uint32_t>(o, uint32_t(t.type));
        put<uint64_t>(o, off);
        off += (t.data.size() + kAlign - 1) / kAlign * kAlign;
    }
    o.resize((o.size() + kAlign - 1) / kAlign * kAlign, 0);
    for (const auto& t : tensors_) {
        o.insert(o.end(), t.data.begin(), t.data.end());
        o.resize((o.size() + kAlign - 1) / kAlign * kAlign, 0);
    }
    return o;
}

Status GgufWriter::write(const std::string& path) const {
    const std::vector<uint8_t> bytes = serialize();
    std::ofstream f(path, std::ios::binary);
    if (!f) return io_error("{}: cannot create", path);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!f) return io_error("{}: write failed", path);
    return ok_status();
}

}  // namespace strata::adapters

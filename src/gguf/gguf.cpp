// GGUF parsing. A bounds-checked cursor reads the header; each failure names the field.
#include "gguf/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace strata::gguf {

std::string_view value_type_name(ValueType t) {
    static constexpr std::string_view names[] = {"u8",  "i8",   "u16",    "i16",   "u32",
                                                 "i32", "f32",  "bool",   "string", "array",
                                                 "u64", "i64",  "f64"};
    auto i = uint32_t(t);
    return i < 13 ? names[i] : std::string_view("?");
}

bool Value::is_int() const {
    switch (type) {
        case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16:
        case ValueType::U32: case ValueType::I32: case ValueType::U64: case ValueType::I64:
            return true;
        default:
            return false;
    }
}

std::string TensorInfo::shape_str() const {
    std::string s = "[";
    for (uint32_t d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
    return s + "]";
}

namespace {

class Cursor {
public:
    Cursor(const uint8_t* p, size_t n) : p_(p), n_(n) {}
    size_t pos() const { return pos_; }
    size_t remaining() const { return n_ - pos_; }

    template <typename T>
    bool read(T* out) {
        if (remaining() < sizeof(T)) return false;
        std::memcpy(out, p_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return true;
    }
    bool read_string(std::string* out, uint64_t max_len) {
        uint64_t len;
        if (!read(&len)) return false;
        if (len > max_len || len > remaining()) return false;
        out->assign(reinterpret_cast<const char*>(p_ + pos_), size_t(len));
        pos_ += size_t(len);
        return true;
    }

private:
    const uint8_t* p_;
    size_t n_;
    size_t pos_ = 0;
};

size_t scalar_size(ValueType t) {
    switch (t) {
        case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
        case ValueType::U16: case ValueType::I16: return 2;
        case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
        case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
        default: return 0;
    }
}

// Reads one scalar of type t; ints go to *i, floats to *f.
bool read_scalar(Cursor& c, ValueType t, int64_t* i, double* f, bool* bad_bool) {
    switch (t) {
        case ValueType::U8: { uint8_t v; if (!c.read(&v)) return false; *i = v; return true; }
        case ValueType::I8: { int8_t v; if (!c.read(&v)) return false; *i = v; return true; }
        case ValueType::U16: { uint16_t v; if (!c.read(&v)) return false; *i = v; return true; }
        case ValueType::I16: { int16_t v; if (!c.read(&v)) return false; *i = v; return true; }
        case ValueType::U32: { uint32_t v; if (!c.read(&v)) return false; *i = v; return true; }
        case ValueType::I32: { int32_t v; if (!c.read(&v)) return false; *i = v; return true; }
        case ValueType::U64: { uint64_t v; if (!c.read(&v)) return false; *i = int64_t(v); return true; }
        case ValueType::I64: { int64_t v; if (!c.read(&v)) return false; *i = v; return true; }
        case ValueType::F32: { float v; if (!c.read(&v)) return false; *f = v; return true; }
        case ValueType::F64: { double v; if (!c.read(&v)) return false; *f = v; return true; }
        case ValueType::BOOL: {
            uint8_t v;
            if (!c.read(&v)) return false;
            if (v > 1) *bad_bool = true;
            *i = v;
            return true;
        }
        default: return false;
    }
}

bool valid_type(uint32_t t) { return t <= 12; }

}  // namespace

File::~File() {
    if (map_) munmap(map_, size_);
}

Result<std::unique_ptr<File>> File::open(const std::string& path, Limits limits) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error("{}: cannot open: {}", path, std::strerror(errno));
    struct stat st{};
    if (fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return io_error("{}: cannot stat: {}", path, std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return invalid_input("{}: not a regular file", path);
    }
    if (st.st_size < 24) {
        ::close(fd);
        return invalid_input("{}: not a GGUF file: only {} bytes (truncated?)", path,
                             int64_t(st.st_size));
    }
    void* m = mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    ::close(fd);
    if (m == MAP_FAILED) return io_error("{}: mmap failed: {}", path, std::strerror(e));
    std::unique_ptr<File> f(new File());
    f->map_ = m;
    f->base_ = static_cast<const uint8_t*>(m);
    f->size_ = size_t(st.st_size);
    if (Status s = f->parse(limits); !s) return s.with_context(path);
    return f;
}

Result<std::unique_ptr<File>> File::from_memory(const uint8_t* data, size_t size, Limits limits) {
    std::unique_ptr<File> f(new File());
    f->base_ = data;
    f->size_ = size;
    if (Status s = f->parse(limits); !s) return s;
    return f;
}

Status File::parse(Limits limits) {
    Cursor c(base_, size_);
    uint32_t magic;
    if (!c.read(&magic)) return invalid_input("not a GGUF file: truncated header");
    if (magic != 0x46554747u) return invalid_input("not a GGUF file: bad magic 0x{:08x}", magic);
    if (!c.read(&version_)) return invalid_input("truncated header (version)");
    if (version_ == 0x03000000u || version_ == 0x02000000u)
        return unsupported("big-endian GGUF files are not supported");
    if (version_ < 2 || version_ > 3)
        return unsupported("GGUF version {} is not supported (only 2 and 3)", version_);
    uint64_t n_tensors, n_kv;
    if (!c.read(&n_tensors) || !c.read(&n_kv)) return invalid_input("truncated header (counts)");
    if (n_tensors > limits.max_tensors)
        return invalid_input("tensor count {} exceeds the limit {}", n_tensors, limits.max_tensors);
    if (n_kv > limits.max_kv)
        return invalid_input("metadata count {} exceeds the limit {}", n_kv, limits.max_kv);

    // Each entry takes at least 13 bytes (key length, value type, one value byte): reserve
    // no more than the file can hold, so a 24-byte header claiming 2^16 (or, with raised
    // limits, 2^40) entries does not allocate for them.
    kv_.reserve(size_t(std::min<uint64_t>(n_kv, c.remaining() / 13)));
    for (uint64_t k = 0; k < n_kv; ++k) {
        std::string key;
        if (!c.read_string(&key, 65535))
            return invalid_input("metadata entry {}: bad or truncated key", k);
        if (kv_index_.count(key)) return invalid_input("duplicate metadata key '{}'", key);
        uint32_t t;
        if (!c.read(&t)) return invalid_input("{}: truncated value type", key);
        if (!valid_type(t)) return invalid_input("{}: unknown value type {}", key, t);
        Value v;
        v.type = ValueType(t);
        bool bad_bool = false;
        if (v.type == ValueType::STRING) {
            if (!c.read_string(&v.s, limits.max_string_bytes))
                return invalid_input("{}: bad or truncated string", key);
        } else if (v.type == ValueType::ARRAY) {
            uint32_t et;
            uint64_t n;
            if (!c.read(&et) || !c.read(&n)) return invalid_input("{}: truncated array header", key);
            if (!valid_type(et)) return invalid_input("{}: unknown array element type {}", key, et);
            if (ValueType(et) == ValueType::ARRAY)
                return unsupported("{}: nested arrays are not supported", key);
            if (n > limits.max_array_elems)
                return invalid_input("{}: array length {} exceeds the limit {}", key, n,
                                     limits.max_array_elems);
            v.elem_type = ValueType(et);
            v.n_elems = n;
            if (v.elem_type == ValueType::STRING) {
                // Each string needs at least its 8-byte length: check before reserving.
                if (n > c.remaining() / 8)
                    return invalid_input("{}: array of {} strings runs past the end of the file", key, n);
                v.strs.resize(size_t(n));
                for (uint64_t j = 0; j < n; ++j)
                    if (!c.read_string(&v.strs[j], limits.max_string_bytes))
                        return invalid_input("{}: element {}: bad or truncated string", key, j);
            } else {
                const size_t es = scalar_size(v.elem_type);
                if (n > c.remaining() / es)
                    return invalid_input("{}: array of {} elements runs past the end of the file", key, n);
                const bool fl = v.elem_type == ValueType::F32 || v.elem_type == ValueType::F64;
                if (fl) v.floats.resize(size_t(n)); else v.ints.resize(size_t(n));
                for (uint64_t j = 0; j < n; ++j) {
                    int64_t iv = 0;
                    double fv = 0;
                    read_scalar(c, v.elem_type, &iv, &fv, &bad_bool);
                    if (fl) v.floats[j] = fv; else v.ints[j] = iv;
                }
            }
        } else {
            if (!read_scalar(c, v.type, &v.i, &v.f, &bad_bool))
                return invalid_input("{}: truncated value", key);
        }
        if (bad_bool) return invalid_input("{}: invalid bool value", key);
        kv_index_[key] = kv_.size();
        kv_.emplace_back(std::move(key), std::move(v));
    }

    if (const Value* a = find("general.alignment")) {
        if (a->type != ValueType::U32)
            return invalid_input("general.alignment: expected u32, file has {}", value_type_name(a->type));
        if (a->i == 0 || (a->i & (a->i - 1)) != 0 || a->i % 8 != 0)
            return invalid_input("general.alignment: {} is not a power of two multiple of 8", a->i);
        alignment_ = uint32_t(a->i);
    }

    if (n_tensors > c.remaining() / 24)  // name len + n_dims + type + offset at minimum
        return invalid_input("file truncated: {} tensor descriptors cannot fit in the remaining {} bytes", n_tensors,
                             uint64_t(c.remaining()));
    tensors_.reserve(size_t(n_tensors));
    for (uint64_t ti = 0; ti < n_tensors; ++ti) {
        TensorInfo t;
        if (!c.read_string(&t.name, 255)) return invalid_input("tensor {}: bad or truncated name", ti);
        if (t.name.size() > 63)
            return invalid_input("tensor '{}': name longer than 63 bytes", t.name);
        if (tensor_index_.count(t.name)) return invalid_input("duplicate tensor name '{}'", t.name);
        if (!c.read(&t.n_dims)) return invalid_input("{}: truncated descriptor", t.name);
        if (t.n_dims < 1 || t.n_dims > 4)
            return invalid_input("{}: {} dimensions (must be 1..4)", t.name, t.n_dims);
        for (uint32_t d = 0; d < t.n_dims; ++d)
            if (!c.read(&t.ne[d])) return invalid_input("{}: truncated shape", t.name);
        uint32_t type;
        if (!c.read(&type) || !c.read(&t.offset)) return invalid_input("{}: truncated descriptor", t.name);
        auto info = dtype_info(type);
        if (!info) return invalid_input("{}: unknown tensor type id {}", t.name, type);
        t.type = DType(type);
        // Each dim must be non-zero and the product must not overflow (cap at 2^60 values).
        uint64_t n = 1;
        for (uint32_t d = 0; d < 4; ++d) {
            if (t.ne[d] == 0) return invalid_input("{}: dimension {} is zero", t.name, d);
            if (t.ne[d] > (uint64_t(1) << 60) / n)
                return invalid_input("{}: shape {} overflows", t.name, t.shape_str());
            n *= t.ne[d];
        }
        if (t.ne[0] % info->block_size != 0)
            return invalid_input("{}: row length {} is not a multiple of {}'s block size {}", t.name,
                                 t.ne[0], info->name, info->block_size);
        t.nbytes = (n / info->block_size) * info->block_bytes;
        if (t.offset % alignment_ != 0)
            return invalid_input("{}: data offset {} is not aligned to {}", t.name, t.offset, alignment_);
        tensor_index_[t.name] = tensors_.size();
        tensors_.push_back(std::move(t));
    }

    data_offset_ = (uint64_t(c.pos()) + alignment_ - 1) / alignment_ * alignment_;
    if (data_offset_ > size_ && n_tensors > 0)
        return invalid_input("file truncated: data section starts at {} but the file has {} bytes",
                             data_offset_, uint64_t(size_));
    const uint64_t data_size = size_ > data_offset_ ? size_ - data_offset_ : 0;
    for (auto& t : tensors_) {
        if (t.offset > data_size || t.nbytes > data_size - t.offset) {
            if (t.nbytes > ~uint64_t(0) - t.offset)  // the end does not fit in 64 bits
                return invalid_input("{}: data offset {} plus {} bytes overflows", t.name,
                                     t.offset, t.nbytes);
            return invalid_input(
                "{}: data [{}, {}) runs past the end of the data section ({} bytes; file truncated?)",
                t.name, t.offset, t.offset + t.nbytes, data_size);
        }
        t.data = base_ + data_offset_ + t.offset;
    }
    return ok_status();
}

const Value* File::find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Result<std::string> File::get_string(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return not_found("metadata key '{}' is missing", key);
    if (v->type != ValueType::STRING)
        return invalid_input("{}: expected string, file has {}", key, value_type_name(v->type));
    return v->s;
}

Result<int64_t> File::get_int(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return not_found("metadata key '{}' is missing", key);
    if (!v->is_int())
        return invalid_input("{}: expected an integer, file has {}", key, value_type_name(v->type));
    return v->i;
}

Result<double> File::get_float(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return not_found("metadata key '{}' is missing", key);
    if (v->is_float()) return v->f;
    if (v->is_int()) return double(v->i);
    return invalid_input("{}: expected a number, file has {}", key, value_type_name(v->type));
}

Result<bool> File::get_bool(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return not_found("metadata key '{}' is missing", key);
    if (v->type != ValueType::BOOL)
        return invalid_input("{}: expected bool, file has {}", key, value_type_name(v->type));
    return v->i != 0;
}

int64_t File::get_int_or(std::string_view key, int64_t dflt) const {
    auto r = get_int(key);
    return r ? *r : dflt;
}
double File::get_float_or(std::string_view key, double dflt) const {
    auto r = get_float(key);
    return r ? *r : dflt;
}
bool File::get_bool_or(std::string_view key, bool dflt) const {
    auto r = get_bool(key);
    return r ? *r : dflt;
}

std::string value_to_string(const Value& v, size_t max_elems) {
    auto quote = [](const std::string& s) {
        std::string o = "\"";
        for (char ch : s.substr(0, 60)) o += (ch == '\n') ? std::string("\\n") : std::string(1, ch);
        if (s.size() > 60) o += "...";
        return o + "\"";
    };
    switch (v.type) {
        case ValueType::STRING: return quote(v.s);
        case ValueType::BOOL: return v.i ? "true" : "false";
        case ValueType::F32: case ValueType::F64: return fmt::format("{}", v.f);
        case ValueType::ARRAY: {
            std::string o = fmt::format("[{} x {}] [", value_type_name(v.elem_type), v.n_elems);
            for (size_t j = 0; j < std::min<size_t>(max_elems, size_t(v.n_elems)); ++j) {
                if (j) o += ", ";
                if (!v.strs.empty()) o += quote(v.strs[j]);
                else if (!v.floats.empty()) o += fmt::format("{}", v.floats[j]);
                else o += std::to_string(v.ints[j]);
            }
            return o + (v.n_elems > max_elems ? ", ...]" : "]");
        }
        default:
            if (v.type == ValueType::U64) return std::to_string(uint64_t(v.i));
            return std::to_string(v.i);
    }
}

}  // namespace strata::gguf

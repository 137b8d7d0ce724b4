// FVEC v1 reader/writer, SHA-256 (FIPS 180-4) and CRC32.
#include "fv/fvec.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "model/model.h"
#include "tensor/dtype.h"

namespace strata::fv {

// ---- SHA-256 --------------------------------------------------------------------------

namespace {

constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void sha_block(uint32_t h[8], const uint8_t* p) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
        w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; ++i) {
        const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
        const uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
        const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

}  // namespace

Sha256 sha256(std::span<const uint8_t> data) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const size_t n = data.size();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) sha_block(h, data.data() + i);
    uint8_t tail[128] = {};
    const size_t rem = n - i;
    if (rem) std::memcpy(tail, data.data() + i, rem);
    tail[rem] = 0x80;
    const size_t tl = rem + 9 <= 64 ? 64 : 128;
    const uint64_t bits = uint64_t(n) * 8;
    for (int k = 0; k < 8; ++k) tail[tl - 1 - size_t(k)] = uint8_t(bits >> (8 * k));
    for (size_t o = 0; o < tl; o += 64) sha_block(h, tail + o);
    Sha256 out;
    for (int k = 0; k < 8; ++k)
        for (int b = 0; b < 4; ++b) out[size_t(4 * k + b)] = uint8_t(h[k] >> (24 - 8 * b));
    return out;
}

std::string hex(std::span<const uint8_t> bytes) {
    static const char* d = "0123456789abcdef";
    std::string s;
    s.reserve(bytes.size() * 2);
    for (uint8_t b : bytes) s += d[b >> 4], s += d[b & 15];
    return s;
}

uint32_t crc32(std::span<const uint8_t> data) {
    static const auto table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    uint32_t c = 0xFFFFFFFFu;
    for (uint8_t b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

Result<ModelIdentity> model_identity(const model::Model& m) {
    if (!m.file) return invalid_input("model has no backing GGUF file to hash");
    const auto& ts = m.file->tensors();
    if (ts.empty()) return invalid_input("model has no tensors to hash");
    const uint8_t* base = ts[0].data - ts[0].offset;  // start of the data section
    const uint64_t size = m.file->file_size() - m.file->data_offset();
    ModelIdentity id;
    id.hash = sha256(std::span<const uint8_t>(base, size_t(size)));
    id.hidden_size = uint32_t(m.hp.n_embd);
    id.n_layers = uint32_t(m.hp.n_layer);
    id.n_heads = uint32_t(m.hp.n_head);
    id.head_dim = uint32_t(m.hp.head_dim);
    return id;
}

const char* policy_name(PositionPolicy p) {
    switch (p) {
        case PositionPolicy::kLastPrompt: return "last-prompt-token";
        case PositionPolicy::kLastAndGenerated: return "last-prompt-and-generated";
        case PositionPolicy::kAll: return "all-tokens";
    }
    return "?";
}

const char* value_type_name(ValueType t) {
    switch (t) {
        case ValueType::kF32: return "f32";
        case ValueType::kF16: return "f16";
        case ValueType::kBF16: return "bf16";
    }
    return "?";
}

// ---- reader ---------------------------------------------------------------------------

namespace {

class Reader {
public:
    explicit Reader(std::span<const uint8_t> b) : b_(b) {}
    size_t left() const { return b_.size() - pos_; }
    size_t pos() const { return pos_; }
    bool take(void* dst, size_t n) {
        if (n > left()) return false;
        std::memcpy(dst, b_.data() + pos_, n);
        pos_ += n;
        return true;
    }
    template <typename T>
    bool get(T& v) {
        return take(&v, sizeof v);  // little-endian host (x86-64)
    }

private:
    std::span<const uint8_t> b_;
    size_t pos_ = 0;
};

size_t value_bytes(ValueType t) { return t == ValueType::kF32 ? 4 : 2; }

bool read_values(Reader& r, ValueType t, uint32_t n, std::vector<float>& out) {
    out.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
        if (t == ValueType::kF32) {
            if (!r.get(out[i])) return false;
        } else {
            uint16_t h;
            if (!r.get(h)) return false;
            out[i] = t == ValueType::kF16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
        }
    }
    return true;
}

}  // namespace

Result<FunctionVector> parse_fvec(std::span<const uint8_t> bytes) {
    if (bytes.size() < kHeaderBytes + 4)
        return invalid_input("FVEC blob is {} bytes, shorter than the {}-byte header and checksum", bytes.size(),
                             kHeaderBytes + 4);
    if (std::memcmp(bytes.data(), "FVEC", 4) != 0) return invalid_input("not an FVEC blob (bad magic)");
    Reader r(bytes.subspan(4, bytes.size() - 8));  // the trailing CRC is read separately
    uint16_t version = 0, flags = 0;
    r.get(version);
    r.get(flags);
    if (version != 1) return unsupported("FVEC version {} (this build reads version 1)", version);
    if (flags & ~uint16_t(7)) return invalid_input("FVEC flags 0x{:x} has unknown bits set", flags);
    // The checksum covers everything before it; check it before trusting any count.
    uint32_t stored_crc;
    std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
    const uint32_t crc = crc32(bytes.first(bytes.size() - 4));
    if (crc != stored_crc)
        return invalid_input("FVEC checksum mismatch (stored {:08x}, computed {:08x}): the blob is corrupt or truncated",
                             stored_crc, crc);
    FunctionVector fv;
    fv.distributed = flags & 1;
    const bool has_task = flags & 2;
    fv.has_scores = flags & 4;
    if (fv.has_scores && !fv.distributed) return invalid_input("FVEC: head scores flag set on an aggregated blob");
    r.take(fv.model_hash.data(), 32);
    uint8_t dtype, policy, hook, reserved;
    r.get(fv.hidden_size), r.get(fv.n_layers), r.get(fv.n_heads), r.get(fv.head_dim);
    r.get(dtype), r.get(policy), r.get(hook), r.get(reserved);
    uint32_t n_entries = 0;
    r.get(fv.scale), r.get(n_entries);
    if (fv.hidden_size == 0 || fv.hidden_size > kMaxHidden)
        return invalid_input("FVEC hidden size {} out of range 1..{}", fv.hidden_size, kMaxHidden);
    if (fv.n_layers == 0 || fv.n_layers > kMaxLayers)
        return invalid_input("FVEC layer count {} out of range 1..{}", fv.n_layers, kMaxLayers);
    if (fv.n_heads == 0 || fv.n_heads > kMaxHeads)
        return invalid_input("FVEC head count {} out of range 1..{}", fv.n_heads, kMaxHeads);
    if (fv.head_dim == 0 || fv.head_dim > kMaxHeadDim)
        return invalid_input("FVEC head dim {} out of range 1..{}", fv.head_dim, kMaxHeadDim);
    if (dtype > 2) return invalid_input("FVEC dtype {} unknown (0 f32, 1 f16, 2 bf16)", dtype);
    if (policy > 2) return invalid_input("FVEC position policy {} unknown (0..2)", policy);
    if (hook > 1) return invalid_input("FVEC hook point {} unknown (0 block output, 1 attention output)", hook);
    if (reserved != 0) return invalid_input("FVEC reserved byte is {} (must be 0)", reserved);
    if (!std::isfinite(fv.scale) || std::fabs(fv.scale) > 1e4f)
        return invalid_input("FVEC scale {} is not a finite value in [-1e4, 1e4]", fv.scale);
    fv.dtype = ValueType(dtype);
    fv.policy = PositionPolicy(policy);
    fv.hook_point = HookPoint(hook);
    if (fv.distributed && fv.hook_point != HookPoint::kBlockOutput)
        return invalid_input("FVEC: distributed blobs inject at their heads; hook point must be 0");
    if (n_entries == 0 || n_entries > kMaxEntries)
        return invalid_input("FVEC entry count {} out of range 1..{}", n_entries, kMaxEntries);
    if (has_task) {
        uint16_t len = 0;
        if (!r.get(len)) return invalid_input("FVEC truncated in the task name");
        if (len > kMaxTaskName || len > r.left()) return invalid_input("FVEC task name length {} too long", len);
        fv.task.resize(len);
        r.take(fv.task.data(), len);
        for (char c : fv.task)
            if (static_cast<unsigned char>(c) < 0x20) return invalid_input("FVEC task name has a control character");
    }
    const uint32_t n_vals = fv.distributed ? fv.head_dim : fv.hidden_size;
    const size_t entry_bytes = 4 + size_t(n_vals) * value_bytes(fv.dtype) + (fv.has_scores ? 4 : 0);
    if (size_t(n_entries) * entry_bytes != r.left())
        return invalid_input("FVEC size mismatch: {} entries of {} bytes need {} bytes, the blob has {}", n_entries,
                             entry_bytes, size_t(n_entries) * entry_bytes, r.left());
    fv.entries.resize(n_entries);
    for (uint32_t e = 0; e < n_entries; ++e) {
        FvEntry& en = fv.entries[e];
        uint16_t layer = 0, second = 0;
        r.get(layer), r.get(second);
        if (layer >= fv.n_layers) return invalid_input("FVEC entry {}: layer {} out of range 0..{}", e, layer, fv.n_layers - 1);
        en.layer = layer;
        if (fv.distributed) {
            if (second >= fv.n_heads) return invalid_input("FVEC entry {}: head {} out of range 0..{}", e, second, fv.n_heads - 1);
            en.head = second;
            if (e > 0) {
                const FvEntry& p = fv.entries[e - 1];
                if (p.layer > en.layer || (p.layer == en.layer && p.head >= en.head))
                    return invalid_input("FVEC entry {}: (layer {}, head {}) not sorted after (layer {}, head {})", e,
                                         en.layer, en.head, p.layer, p.head);
            }
        } else if (second != 0) {
            return invalid_input("FVEC entry {}: reserved field is {} (must be 0)", e, second);
        }
        read_values(r, fv.dtype, n_vals, en.values);
        for (float v : en.values)
            if (!std::isfinite(v)) return invalid_input("FVEC entry {} has a non-finite value", e);
        if (fv.has_scores) {
            r.get(en.score);
            if (!std::isfinite(en.score)) return invalid_input("FVEC entry {} has a non-finite head score", e);
        }
    }
    fv.id = hex(sha256(bytes));
    return fv;
}

Status check_model(const FunctionVector& fv, const ModelIdentity& m) {
    if (fv.hidden_size != m.hidden_size || fv.n_layers != m.n_layers || fv.n_heads != m.n_heads ||
        fv.head_dim != m.head_dim)
        return invalid_input(
            "function vector was made for a model with hidden size {}, {} layers, {} heads of {} dims; this model "
            "has {}, {}, {}, {}",
            fv.hidden_size, fv.n_layers, fv.n_heads, fv.head_dim, m.hidden_size, m.n_layers, m.n_heads, m.head_dim);
    if (fv.model_hash != m.hash)
        return invalid_input("function vector was made for another model (model hash {}…, this model {}…)",
                             hex(fv.model_hash).substr(0, 16), hex(m.hash).substr(0, 16));
    return ok_status();
}

Result<FunctionVector> parse_fvec(std::span<const uint8_t> bytes, const ModelIdentity& model) {
    auto fv = parse_fvec(bytes);
    if (!fv) return fv;
    if (Status s = check_model(*fv, model); !s) return s;
    return fv;
}

Result<FunctionVector> load_fvec(const std::string& path, const ModelIdentity& model) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return not_found("{}: cannot open function vector file", path);
    const std::streamoff size = f.tellg();
    constexpr std::streamoff kMaxFile = 64 << 20;
    if (size < 0 || size > kMaxFile) return invalid_input("{}: file size {} out of range for an FVEC blob", path, size);
    std::vector<uint8_t> buf(static_cast<size_t>(size));
    f.seekg(0);
    if (!f.read(reinterpret_cast<char*>(buf.data()), size)) return io_error("{}: read failed", path);
    auto fv = parse_fvec(buf, model);
    if (!fv) return fv.error().with_context(path);
    return fv;
}

// ---- writer ---------------------------------------------------------------------------

namespace {

template <typename T>
void put(std::vector<uint8_t>& o, T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    o.insert(o.end(), p, p + sizeof v);
}

}  // namespace

Result<std::vector<uint8_t>> serialize_fvec(FunctionVector& fv) {
    if (fv.hidden_size == 0 || fv.hidden_size > kMaxHidden || fv.n_layers == 0 || fv.n_layers > kMaxLayers ||
        fv.n_heads == 0 || fv.n_heads > kMaxHeads || fv.head_dim == 0 || fv.head_dim > kMaxHeadDim)
        return invalid_input("function vector sizes out of range");
    if (fv.entries.empty() || fv.entries.size() > kMaxEntries)
        return invalid_input("function vector has {} entries (1..{})", fv.entries.size(), kMaxEntries);
    if (fv.task.size() > kMaxTaskName) return invalid_input("task name longer than {} bytes", kMaxTaskName);
    if (fv.distributed && fv.hook_point != HookPoint::kBlockOutput)
        return invalid_input("distributed function vectors use hook point 0");
    if (!std::isfinite(fv.scale)) return invalid_input("scale is not finite");
    const uint32_t n_vals = fv.distributed ? fv.head_dim : fv.hidden_size;
    for (size_t e = 0; e < fv.entries.size(); ++e) {
        const FvEntry& en = fv.entries[e];
        if (en.layer < 0 || uint32_t(en.layer) >= fv.n_layers) return invalid_input("entry {}: layer {} out of range", e, en.layer);
        if (fv.distributed && (en.head < 0 || uint32_t(en.head) >= fv.n_heads))
            return invalid_input("entry {}: head {} out of range", e, en.head);
        if (fv.distributed && e > 0) {
            const FvEntry& p = fv.entries[e - 1];
            if (p.layer > en.layer || (p.layer == en.layer && p.head >= en.head))
                return invalid_input("entry {}: distributed entries must be sorted by (layer, head)", e);
        }
        if (en.values.size() != n_vals) return invalid_input("entry {}: {} values, expected {}", e, en.values.size(), n_vals);
        for (float v : en.values)
            if (!std::isfinite(v)) return invalid_input("entry {}: non-finite value", e);
    }
    std::vector<uint8_t> o;
    o.insert(o.end(), {'F', 'V', 'E', 'C'});
    const uint16_t flags = uint16_t((fv.distributed ? 1 : 0) | (fv.task.empty() ? 0 : 2) | (fv.has_scores && fv.distributed ? 4 : 0));
    put<uint16_t>(o, 1);
    put<uint16_t>(o, flags);
    o.insert(o.end(), fv.model_hash.begin(), fv.model_hash.end());
    put(o, fv.hidden_size), put(o, fv.n_layers), put(o, fv.n_heads), put(o, fv.head_dim);
    put(o, uint8_t(fv.dtype)), put(o, uint8_t(fv.policy)), put(o, uint8_t(fv.hook_point)), put<uint8_t>(o, 0);
    put(o, fv.scale);
    put(o, uint32_t(fv.entries.size()));
    if (!fv.task.empty()) {
        put(o, uint16_t(fv.task.size()));
        o.insert(o.end(), fv.task.begin(), fv.task.end());
    }
    for (FvEntry& en : fv.entries) {
        put(o, uint16_t(en.layer));
        put(o, uint16_t(fv.distributed ? en.head : 0));
        for (float& v : en.values) {
            switch (fv.dtype) {
                case ValueType::kF32: put(o, v); break;
                case ValueType::kF16: {
                    const uint16_t h = fp32_to_fp16(v);
                    put(o, h);
                    v = fp16_to_fp32(h);  // keep the in-memory copy equal to what a reader gets
                    break;
                }
                case ValueType::kBF16: {
                    const uint16_t h = fp32_to_bf16(v);
                    put(o, h);
                    v = bf16_to_fp32(h);
                    break;
                }
            }
            if (!std::isfinite(v)) return invalid_input("a value overflows {}", value_type_name(fv.dtype));
        }
        if (fv.has_scores && fv.distributed) put(o, en.score);
    }
    put(o, crc32(o));
    if (!fv.distributed) fv.has_scores = false;
    fv.id = hex(sha256(o));
    return o;
}

Status save_fvec(const std::string& path, FunctionVector& fv) {
    auto bytes = serialize_fvec(fv);
    if (!bytes) return bytes.error();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) return io_error("{}: cannot create file", path);
    f.write(reinterpret_cast<const char*>(bytes->data()), std::streamsize(bytes->size()));
    if (!f) return io_error("{}: write failed", path);
    return ok_status();
}

}  // namespace strata::fv

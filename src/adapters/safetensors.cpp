// safetensors parsing and writing. nlohmann::json parses the header with exceptions off
// (parse(..., false)), so malformed JSON becomes a Status, never a throw across modules.
#include "adapters/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "tensor/dtype.h"

namespace strata::adapters {

namespace {

using nlohmann::json;

int dtype_bytes(const std::string& d) {
    if (d == "F32" || d == "I32" || d == "U32") return 4;
    if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
    if (d == "F64" || d == "I64" || d == "U64") return 8;
    if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
    return 0;
}

}  // namespace

Result<StFile> parse_safetensors(const uint8_t* data, size_t size, const std::string& what) {
    if (size < 8) return invalid_input("{}: not a safetensors file: only {} bytes", what, size);
    uint64_t n = 0;
    std::memcpy(&n, data, 8);
    if (n > kMaxSafetensorsHeader)
        return invalid_input("{}: safetensors header of {} bytes exceeds the {} byte limit", what, n,
                             kMaxSafetensorsHeader);
    if (n > size - 8) return invalid_input("{}: safetensors header of {} bytes runs past the end of the file ({} bytes)", what, n, size);
    json h = json::parse(data + 8, data + 8 + n, nullptr, false);
    if (h.is_discarded() || !h.is_object()) return invalid_input("{}: safetensors header is not a JSON object", what);
    const uint64_t data_size = size - 8 - n;
    const uint8_t* base = data + 8 + n;
    StFile out;
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (auto& [name, v] : h.items()) {
        if (name == "__metadata__") {
            if (!v.is_object()) return invalid_input("{}: __metadata__ is not an object", what);
            for (auto& [k, mv] : v.items())
                if (mv.is_string()) out.metadata[k] = mv.get<std::string>();
            continue;
        }
        if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() || !v.contains("shape") ||
            !v["shape"].is_array() || !v.contains("data_offsets") || !v["data_offsets"].is_array() ||
            v["data_offsets"].size() != 2)
            return invalid_input("{}: {}: needs dtype, shape and data_offsets [begin, end]", what, name);
        StTensor t;
        t.dtype = v["dtype"].get<std::string>();
        const int eb = dtype_bytes(t.dtype);
        if (eb == 0) return unsupported("{}: {}: unknown dtype \"{}\"", what, name, t.dtype);
        uint64_t numel = 1;
        for (auto& d : v["shape"]) {
            if (!d.is_number_unsigned()) return invalid_input("{}: {}: shape entries must be non-negative integers", what, name);
            const uint64_t dim = d.get<uint64_t>();
            if (dim != 0 && numel > (uint64_t(1) << 40) / dim)
                return invalid_input("{}: {}: shape is too large", what, name);
            numel *= dim;
            t.shape.push_back(int64_t(dim));
        }
        auto& off = v["data_offsets"];
        if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            return invalid_input("{}: {}: data_offsets must be non-negative integers", what, name);
        const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
        if (b > e || e > data_size)
            return invalid_input("{}: {}: data_offsets [{}, {}] out of bounds (data area is {} bytes)", what, name, b,
                                 e, data_size);
        if (e - b != numel * uint64_t(eb))
            return invalid_input("{}: {}: {} x {} needs {} bytes, data_offsets give {}", what, name, t.dtype,
                                 v["shape"].dump(), numel * uint64_t(eb), e - b);
        spans.emplace_back(b, e);
        const uint8_t* p = base + b;
        if (t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16" || t.dtype == "F64") {
            t.data.resize(size_t(numel));
            for (uint64_t i = 0; i < numel; ++i) {
                float f;
                if (t.dtype == "F32") {
                    std::memcpy(&f, p + 4 * i, 4);
                } else if (t.dtype == "F64") {
                    double d;
                    std::memcpy(&d, p + 8 * i, 8);
                    f = float(d);
                } else {
                    uint16_t u;
                    std::memcpy(&u, p + 2 * i, 2);
                    f = t.dtype == "F16" ? fp16_to_fp32(u) : bf16_to_fp32(u);
                }
                t.data[size_t(i)] = f;
            }
        }
        out.tensors.emplace(name, std::move(t));
    }
    // Tensors must tile the data area exactly.
    std::sort(spans.begin(), spans.end());
    uint64_t pos = 0;
    for (auto [b, e] : spans) {
        if (b != pos)
            return invalid_input("{}: data area has {} at byte {} (tensors must tile it exactly)", what,
                                 b < pos ? "overlapping tensors" : "a gap", std::min(b, pos));
        pos = e;
    }
    if (pos != data_size) return invalid_input("{}: {} trailing bytes after the last tensor", what, data_size - pos);
    return out;
}

Result<StFile> read_safetensors(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return io_error("{}: cannot open", path);
    f.seekg(0, std::ios::end);
    const auto size = f.tellg();
    if (size < 0) return io_error("{}: cannot read", path);
    // Check the header length before reading the whole file into memory.
    f.seekg(0);
    uint8_t hdr[8] = {};
    f.read(reinterpret_cast<char*>(hdr), 8);
    uint64_t n = 0;
    std::memcpy(&n, hdr, 8);
    if (size >= 8 && n > kMaxSafetensorsHeader)
        return invalid_input("{}: safetensors header of {} bytes exceeds the {} byte limit", path, n,
                             kMaxSafetensorsHeader);
    std::vector<uint8_t> buf(static_cast<size_t>(size));
    f.seekg(0);
    f.read(reinterpret_cast<char*>(buf.data()), size);
    if (!f) return io_error("{}: read failed", path);
    return parse_safetensors(buf.data(), buf.size(), path);
}

std::vector<uint8_t> serialize_safetensors(const StFile& f, bool f16) {
    json h = json::object();
    json meta = json::object();
    for (auto& [k, v] : f.metadata) meta[k] = v;
    if (!meta.empty()) h["__metadata__"] = meta;
    uint64_t off = 0;
    const uint64_t eb = f16 ? 2 : 4;
    for (auto& [name, t] : f.tensors) {  // std::map: name order
        const uint64_t nb = uint64_t(t.data.size()) * eb;
        h[name] = {{"dtype", f16 ? "F16" : "F32"}, {"shape", t.shape}, {"data_offsets", {off, off + nb}}};
        off += nb;
    }
    std::string hs = h.dump();
    hs.append((8 - hs.size() % 8) % 8, ' ');
    std::vector<uint8_t> out(8 + hs.size() + off);
    const uint64_t n = hs.size();
    std::memcpy(out.data(), &n, 8);
    std::memcpy(out.data() + 8, hs.data(), hs.size());
    uint8_t* p = out.data() + 8 + hs.size();
    for (auto& [name, t] : f.tensors)
        for (float v : t.data) {
            if (f16) {
                const uint16_t u = fp32_to_fp16(v);
                std::memcpy(p, &u, 2);
            } else {
                std::memcpy(p, &v, 4);
            }
            p += eb;
        }
    return out;
}

Status write_safetensors(const std::string& path, const StFile& f, bool f16) {
    const std::vector<uint8_t> bytes = serialize_safetensors(f, f16);
    std::ofstream o(path, std::ios::binary);
    if (!o) return io_error("{}: cannot create", path);
    o.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!o) return io_error("{}: write failed", path);
    return ok_status();
}

}  // namespace strata::adapters

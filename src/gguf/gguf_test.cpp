// Tests for the GGUF reader. Small images are built in memory by the Writer below (the
// layout of spec §1, written field by field), then parsed with File::from_memory: a valid
// file with every metadata type, and one test per rejection path asserting the exact
// message. The absurd-count tests also check, through a counting operator new, that a
// crafted header is rejected before anything large is allocated. The last tests open
// tests/fixtures/tiny-llama.gguf and the real SmolLM2-135M-Instruct Q4_1 file
// (tools/fetch_model.sh; that test skips when it is absent).
#include "gguf/gguf.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <new>
#include <string>
#include <vector>

// Counts every byte requested through the global operator new (this binary only). GCC's
// -Wmismatched-new-delete cannot see that these new/delete pairs both use malloc/free.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<uint64_t> g_new_bytes{0};
}  // namespace
void* operator new(std::size_t n) {
    g_new_bytes += n;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace strata::gguf {
namespace {

constexpr uint64_t k2p40 = uint64_t(1) << 40;

// ---- A minimal GGUF writer: raw little-endian fields, plus helpers for whole kv pairs and
// tensor descriptors. Nothing is validated, so tests can write any malformed layout.

struct Writer {
    std::vector<uint8_t> b;

    template <typename T>
    Writer& put(T v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        b.insert(b.end(), p, p + sizeof(T));
        return *this;
    }
    Writer& str(std::string_view s) {
        put<uint64_t>(s.size()).b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Writer& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        return put<uint32_t>(0x46554747u).put(version).put(n_tensors).put(n_kv);
    }
    Writer& key(std::string_view k, ValueType t) { return str(k).put(uint32_t(t)); }
    Writer& kv_u32(std::string_view k, uint32_t v) { return key(k, ValueType::U32).put(v); }
    Writer& kv_str(std::string_view k, std::string_view v) { return key(k, ValueType::STRING).str(v); }
    Writer& array_header(std::string_view k, ValueType et, uint64_t n) {
        return key(k, ValueType::ARRAY).put(uint32_t(et)).put(n);
    }
    Writer& tensor(std::string_view name, std::vector<uint64_t> ne, DType t, uint64_t off) {
        str(name).put(uint32_t(ne.size()));
        for (uint64_t d : ne) put(d);
        return put(uint32_t(t)).put(off);
    }
    Writer& pad_to(size_t alignment) {
        while (b.size() % alignment) b.push_back(0);
        return *this;
    }
    Writer& bytes(size_t n, uint8_t v) { return b.insert(b.end(), n, v), *this; }
    size_t size() const { return b.size(); }
};

using Bytes = std::vector<uint8_t>;
std::string parse_error(const Bytes& img, Limits limits = {}) {
    auto r = File::from_memory(img.data(), img.size(), limits);
    return r ? std::string("<parsed>") : r.error().message();
}
ErrorCode parse_code(const Bytes& img) {
    auto r = File::from_memory(img.data(), img.size());
    return r ? ErrorCode::kOk : r.error().code();
}
Bytes cut(const Bytes& img, size_t n) { return {img.begin(), img.begin() + std::ptrdiff_t(n)}; }

void expect_ints(const File& g, std::initializer_list<std::pair<const char*, int64_t>> kvs) {
    for (const auto& [k, v] : kvs) {
        auto r = g.get_int(k);
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(*r, v) << k;
    }
}

// A header with one tensor whose descriptor fields are given; data section big enough.
Bytes one_tensor(std::vector<uint64_t> ne, uint32_t type, uint64_t off = 0, size_t data = 4096) {
    Writer w;
    w.header(1, 0).str("t").put(uint32_t(ne.size()));
    for (uint64_t d : ne) w.put(d);
    return w.put(type).put(off).pad_to(32).bytes(data, 0).b;
}

// ---- Valid files

TEST(GgufReader, ParsesEveryValueTypeArraysAlignmentAndTensors) {
    Writer w;
    w.header(3, 20);
    w.key("t.u8", ValueType::U8).put<uint8_t>(200).key("t.i8", ValueType::I8).put<int8_t>(-100);
    w.key("t.u16", ValueType::U16).put<uint16_t>(60000).key("t.i16", ValueType::I16).put<int16_t>(-30000);
    w.kv_u32("t.u32", 4000000000u).key("t.i32", ValueType::I32).put<int32_t>(-2000000000);
    w.key("t.f32", ValueType::F32).put<float>(1.5f).key("t.bool", ValueType::BOOL).put<uint8_t>(1);
    w.kv_str("t.str", "h\xC3\xA9llo").key("t.u64", ValueType::U64).put<uint64_t>(~uint64_t(0));
    w.key("t.i64", ValueType::I64).put<int64_t>(-(int64_t(1) << 62));
    w.key("t.f64", ValueType::F64).put<double>(-0.125);
    w.array_header("a.i32", ValueType::I32, 3).put<int32_t>(-1).put<int32_t>(0).put<int32_t>(7);
    w.array_header("a.f32", ValueType::F32, 2).put<float>(0.5f).put<float>(-2.0f);
    w.array_header("a.str", ValueType::STRING, 3).str("").str("ab").str("<|im_end|>");
    w.array_header("a.bool", ValueType::BOOL, 2).put<uint8_t>(0).put<uint8_t>(1);
    w.array_header("a.u8", ValueType::U8, 0);
    w.array_header("a.f64", ValueType::F64, 1).put<double>(3.25);
    w.kv_u32("general.alignment", 64).kv_str("general.architecture", "llama");
    w.tensor("vec", {8}, DType::F32, 0).tensor("mat", {32, 3}, DType::Q8_0, 64);  // 32, 102 bytes
    w.tensor("cube", {2, 3, 4, 5}, DType::F16, 192).pad_to(64);                   // 240 bytes
    const size_t data_start = w.size();
    for (int i = 0; i < 8; ++i) w.put<float>(float(i) + 0.25f);
    w.bytes(32, 0).bytes(102, 0x5A).bytes(26, 0).bytes(240, 0x11);

    auto f = File::from_memory(w.b.data(), w.size());
    ASSERT_TRUE(f) << f.error().message();
    const File& g = **f;
    EXPECT_EQ(g.version(), 3u);
    EXPECT_EQ(g.alignment(), 64u);
    EXPECT_EQ(g.data_offset(), data_start);
    ASSERT_EQ(g.metadata().size(), 20u);
    EXPECT_EQ(g.metadata()[0].first, "t.u8");  // file order is kept

    expect_ints(g, {{"t.u8", 200}, {"t.i8", -100}, {"t.u16", 60000}, {"t.i16", -30000},
                    {"t.u32", 4000000000}, {"t.i32", -2000000000}, {"t.i64", -(int64_t(1) << 62)}});
    EXPECT_EQ(*g.get_float("t.f32"), 1.5);
    EXPECT_EQ(*g.get_float("t.u16"), 60000.0);  // ints widen to float
    EXPECT_EQ(*g.get_bool("t.bool"), true);
    EXPECT_EQ(*g.get_string("t.str"), "h\xC3\xA9llo");
    EXPECT_EQ(uint64_t(*g.get_int("t.u64")), ~uint64_t(0));  // stored bitwise
    EXPECT_EQ(*g.get_float("t.f64"), -0.125);
    EXPECT_EQ(g.find("t.u64")->type, ValueType::U64);

    const Value* a = g.find("a.i32");
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->type == ValueType::ARRAY && a->elem_type == ValueType::I32);
    EXPECT_EQ(a->ints, (std::vector<int64_t>{-1, 0, 7}));
    EXPECT_EQ(g.find("a.f32")->floats, (std::vector<double>{0.5, -2.0}));
    EXPECT_EQ(g.find("a.str")->strs, (std::vector<std::string>{"", "ab", "<|im_end|>"}));
    EXPECT_EQ(g.find("a.bool")->ints, (std::vector<int64_t>{0, 1}));
    EXPECT_EQ(g.find("a.u8")->n_elems, 0u);
    EXPECT_EQ(g.find("a.f64")->floats, (std::vector<double>{3.25}));

    EXPECT_EQ(g.get_string("t.u8").error().message(), "t.u8: expected string, file has u8");
    EXPECT_EQ(g.get_int("t.str").error().message(), "t.str: expected an integer, file has string");
    EXPECT_EQ(g.get_bool("t.u8").error().message(), "t.u8: expected bool, file has u8");
    EXPECT_EQ(g.get_int("nope").error().message(), "metadata key 'nope' is missing");
    EXPECT_EQ(g.get_int("nope").error().code(), ErrorCode::kNotFound);
    EXPECT_TRUE(g.get_int_or("nope", 42) == 42 && g.get_float_or("t.f32", 9.0) == 1.5);

    ASSERT_EQ(g.tensors().size(), 3u);
    const TensorInfo *vec = g.find_tensor("vec"), *mat = g.find_tensor("mat"),
                     *cube = g.find_tensor("cube");
    ASSERT_TRUE(vec && mat && cube);
    EXPECT_EQ(g.find_tensor("nope"), nullptr);
    EXPECT_EQ(vec->data, w.b.data() + data_start);
    EXPECT_EQ(mat->data, w.b.data() + data_start + 64);
    EXPECT_EQ(cube->data, w.b.data() + data_start + 192);
    EXPECT_EQ(vec->nbytes + mat->nbytes + cube->nbytes, 32u + 102u + 240u);
    EXPECT_TRUE(mat->row_bytes() == 34u && mat->type == DType::Q8_0 && cube->n_elements() == 120u);
    EXPECT_EQ(cube->shape_str(), "[2, 3, 4, 5]");
    EXPECT_EQ(mat->ne, (std::array<uint64_t, 4>{32, 3, 1, 1}));
    float v3;
    std::memcpy(&v3, vec->data + 12, 4);
    EXPECT_TRUE(v3 == 3.25f && mat->data[0] == 0x5A && cube->data[239] == 0x11);
}

TEST(GgufReader, DefaultsAndVersion2) {
    const Bytes v2 = Writer().header(1, 1, 2).kv_str("general.architecture", "llama")
                         .tensor("x", {4}, DType::F32, 0).pad_to(32).bytes(16, 0).b;
    auto f = File::from_memory(v2.data(), v2.size());
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ((*f)->version(), 2u);
    EXPECT_EQ((*f)->alignment(), 32u);  // general.alignment absent
    EXPECT_EQ((*f)->data_offset() % 32, 0u);

    const Bytes e = Writer().header(0, 0).b;  // no tensors, no metadata, no data section
    auto g = File::from_memory(e.data(), e.size());
    ASSERT_TRUE(g) << g.error().message();
    EXPECT_TRUE((*g)->tensors().empty());
}

// ---- Header errors

TEST(GgufErrors, BadMagicVersionAndEndianness) {
    const Bytes magic = Writer().put<uint32_t>(0x4C4D4747u).put<uint32_t>(3).bytes(16, 0).b;  // GGML
    EXPECT_EQ(parse_error(magic), "not a GGUF file: bad magic 0x4c4d4747");
    EXPECT_EQ(parse_code(magic), ErrorCode::kInvalidInput);
    EXPECT_EQ(parse_error(Writer().header(0, 0, 1).b), "GGUF version 1 is not supported (only 2 and 3)");
    EXPECT_EQ(parse_error(Writer().header(0, 0, 4).b), "GGUF version 4 is not supported (only 2 and 3)");
    EXPECT_EQ(parse_code(Writer().header(0, 0, 4).b), ErrorCode::kUnsupported);
    // A big-endian writer stores version 3 as 00 00 00 03 (and byte-swaps the counts).
    const Bytes be = Writer().put<uint32_t>(0x46554747u).put<uint32_t>(0x03000000u).bytes(16, 0).b;
    EXPECT_EQ(parse_error(be), "big-endian GGUF files are not supported");
    EXPECT_EQ(parse_code(be), ErrorCode::kUnsupported);
}

// A valid image with known field positions, cut at each of them.
TEST(GgufErrors, TruncatedAtEveryStage) {
    Writer w;
    const size_t kv0 = w.header(2, 3).size();
    const size_t kv1 = w.kv_str("general.architecture", "llama").size();
    const size_t kv1_elems = w.array_header("test.ints", ValueType::I32, 4).size();
    w.put<int32_t>(1).put<int32_t>(2).put<int32_t>(3).put<int32_t>(4);
    const size_t ti0 = w.array_header("test.strs", ValueType::STRING, 2).str("ab").str("cdefgh").size();
    const size_t ti1 = w.tensor("blk.0.attn_q.weight", {8}, DType::F32, 0).size();  // 32 bytes
    const size_t ti_end = w.tensor("blk.0.ffn_down.weight", {32, 2}, DType::Q8_0, 32).size();  // 68 B
    const size_t data = w.pad_to(32).size();
    ASSERT_LT(ti_end, data) << "the test needs some padding before the data section";
    w.bytes(100, 0x33);
    ASSERT_EQ(parse_error(w.b), "<parsed>");

    const std::string t0 = "blk.0.attn_q.weight", t1 = "blk.0.ffn_down.weight";
    const std::pair<size_t, std::string> cases[] = {
        {0, "not a GGUF file: truncated header"},
        {3, "not a GGUF file: truncated header"},
        {6, "truncated header (version)"},
        {20, "truncated header (counts)"},
        {kv0 + 4, "metadata entry 0: bad or truncated key"},         // in the key length
        {kv0 + 8 + 10, "metadata entry 0: bad or truncated key"},    // in the key bytes
        {kv0 + 8 + 20 + 2, "general.architecture: truncated value type"},
        {kv1 - 2, "general.architecture: bad or truncated string"},  // in the value
        {kv1 + 8 + 9 + 4 + 3, "test.ints: truncated array header"},
        {kv1_elems + 10, "test.ints: array of 4 elements runs past the end of the file"},
        {ti0 - 3, "test.strs: element 1: bad or truncated string"},
        {ti0 + 10, "file truncated: 2 tensor descriptors cannot fit in the remaining 10 bytes"},
        {ti1 + 8 + 5, "tensor 1: bad or truncated name"},
        {ti1 + 8 + 21 + 2, t1 + ": truncated descriptor"},  // in n_dims
        {ti1 + 8 + 21 + 4 + 12, t1 + ": truncated shape"},
        {ti_end - 3, t1 + ": truncated descriptor"},        // in the offset
        {data - 1, "file truncated: data section starts at " + std::to_string(data) +
                       " but the file has " + std::to_string(data - 1) + " bytes"},
        {data, t0 + ": data [0, 32) runs past the end of the data section (0 bytes; file "
                    "truncated?)"},
        {data + 99, t1 + ": data [32, 100) runs past the end of the data section (99 bytes; "
                         "file truncated?)"},
    };
    for (const auto& [n, msg] : cases) {
        EXPECT_EQ(parse_error(cut(w.b, n)), msg) << "cut at " << n;
        EXPECT_EQ(parse_code(cut(w.b, n)), ErrorCode::kInvalidInput) << "cut at " << n;
    }
}

TEST(GgufErrors, OpenReportsPathProblems) {
    const std::string dir = ::testing::TempDir();
    auto open_error = [](const std::string& path) {
        auto r = File::open(path);
        return r ? std::string("<opened>") : r.error().message();
    };
    EXPECT_EQ(open_error(dir + "/no_such_file.gguf"),
              dir + "/no_such_file.gguf: cannot open: No such file or directory");
    EXPECT_EQ(File::open(dir + "/no_such_file.gguf").error().code(), ErrorCode::kIo);
    EXPECT_EQ(open_error(dir), dir + ": not a regular file");
    const std::string tiny = dir + "/strata_tiny.gguf";
    std::ofstream(tiny, std::ios::binary) << "GGUF\x03";
    EXPECT_EQ(open_error(tiny), tiny + ": not a GGUF file: only 5 bytes (truncated?)");
    const Bytes v7 = Writer().header(0, 0, 7).b;  // parse errors get the path as context
    std::ofstream(tiny, std::ios::binary)
        .write(reinterpret_cast<const char*>(v7.data()), std::streamsize(v7.size()));
    EXPECT_EQ(open_error(tiny), tiny + ": GGUF version 7 is not supported (only 2 and 3)");
    std::remove(tiny.c_str());
}

// ---- Metadata errors

TEST(GgufErrors, MetadataContent) {
    auto one = [] { return Writer().header(0, 1); };
    EXPECT_EQ(parse_error(Writer().header(0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2).b),
              "duplicate metadata key 'a.b'");
    EXPECT_EQ(parse_error(one().str("k").put<uint32_t>(13).bytes(8, 0).b), "k: unknown value type 13");
    EXPECT_EQ(parse_error(one().array_header("k", ValueType(99), 1).bytes(8, 0).b),
              "k: unknown array element type 99");
    const Bytes nest = one().array_header("k", ValueType::ARRAY, 1).bytes(16, 0).b;
    EXPECT_EQ(parse_error(nest), "k: nested arrays are not supported");
    EXPECT_EQ(parse_code(nest), ErrorCode::kUnsupported);
    EXPECT_EQ(parse_error(one().key("k", ValueType::BOOL).put<uint8_t>(2).b), "k: invalid bool value");
    EXPECT_EQ(parse_error(one().array_header("k", ValueType::BOOL, 2).put<uint16_t>(0x0701).b),
              "k: invalid bool value");
    EXPECT_EQ(parse_error(one().key("general.alignment", ValueType::U64).put<uint64_t>(64).b),
              "general.alignment: expected u32, file has u64");
    EXPECT_EQ(parse_error(one().kv_u32("general.alignment", 48).b),
              "general.alignment: 48 is not a power of two multiple of 8");
    EXPECT_EQ(parse_error(one().kv_u32("general.alignment", 0).b),
              "general.alignment: 0 is not a power of two multiple of 8");
}

// ---- Tensor descriptor errors

TEST(GgufErrors, TensorDescriptors) {
    EXPECT_EQ(parse_error(Writer().header(2, 0).tensor("w", {4}, DType::F32, 0)
                              .tensor("w", {4}, DType::F32, 32).pad_to(32).bytes(64, 0).b),
              "duplicate tensor name 'w'");

    EXPECT_EQ(parse_error(one_tensor({32}, 4)), "t: unknown tensor type id 4");    // retired
    EXPECT_EQ(parse_error(one_tensor({32}, 31)), "t: unknown tensor type id 31");  // retired
    EXPECT_EQ(parse_error(one_tensor({32}, 1000)), "t: unknown tensor type id 1000");
    EXPECT_EQ(parse_error(one_tensor({}, 0)), "t: 0 dimensions (must be 1..4)");
    EXPECT_EQ(parse_error(one_tensor({1, 1, 1, 1, 1}, 0)), "t: 5 dimensions (must be 1..4)");
    EXPECT_EQ(parse_error(one_tensor({4, 0}, 0)), "t: dimension 1 is zero");
    EXPECT_EQ(parse_error(one_tensor({0}, 0)), "t: dimension 0 is zero");
    EXPECT_EQ(parse_error(one_tensor({k2p40, k2p40}, 0)),
              "t: shape [1099511627776, 1099511627776] overflows");
    EXPECT_EQ(parse_error(one_tensor({~uint64_t(0)}, 0)), "t: shape [18446744073709551615] overflows");
    EXPECT_EQ(parse_error(one_tensor({33, 2}, uint32_t(DType::Q4_0))),
              "t: row length 33 is not a multiple of Q4_0's block size 32");
    EXPECT_EQ(parse_error(one_tensor({576}, uint32_t(DType::Q4_K))),
              "t: row length 576 is not a multiple of Q4_K's block size 256");
    EXPECT_EQ(parse_error(one_tensor({4}, 0, 16)), "t: data offset 16 is not aligned to 32");
    EXPECT_EQ(parse_error(one_tensor({1024}, 0, 0, 4095)),
              "t: data [0, 4096) runs past the end of the data section (4095 bytes; file truncated?)");
    EXPECT_EQ(parse_error(one_tensor({4}, 0, 4096, 4096)),
              "t: data [4096, 4112) runs past the end of the data section (4096 bytes; file "
              "truncated?)");
    EXPECT_EQ(parse_error(one_tensor({8}, 0, ~uint64_t(0) - 31)),  // aligned, end wraps
              "t: data offset 18446744073709551584 plus 32 bytes overflows");

    const std::string n64(64, 'n');
    EXPECT_EQ(parse_error(Writer().header(1, 0).tensor(n64, {4}, DType::F32, 0).bytes(64, 0).b),
              "tensor '" + n64 + "': name longer than 63 bytes");
    // Known but unimplemented types are accepted by the reader (the model decides).
    EXPECT_EQ(parse_error(one_tensor({256}, 16)), "<parsed>");  // IQ2_XXS
}

// ---- Absurd counts: rejected from the header alone, without allocating for them.

TEST(GgufErrors, AbsurdCountsAreRejectedWithoutAllocating) {
    constexpr uint64_t kSmall = 64 * 1024;  // messages and small bookkeeping only
    Limits huge;
    huge.max_tensors = huge.max_kv = huge.max_string_bytes = huge.max_array_elems = ~uint64_t(0);

    // Each image is a header plus 64 bytes; 0xFF filler makes the first key length absurd too.
    const Bytes tc = Writer().header(k2p40, 0).bytes(64, 0).b;
    const Bytes kc = Writer().header(0, k2p40).bytes(64, 0xFF).b;
    const Bytes kc_at_limit = Writer().header(0, 1 << 16).bytes(64, 0xFF).b;
    const Bytes al = Writer().header(0, 1).array_header("k", ValueType::U32, k2p40).bytes(64, 0).b;
    const Bytes asl = Writer().header(0, 1).array_header("k", ValueType::STRING, k2p40).bytes(64, 0).b;
    const Bytes sl = Writer().header(0, 1).key("k", ValueType::STRING).put(k2p40).bytes(64, 0).b;
    const Bytes el = Writer().header(0, 1).array_header("k", ValueType::STRING, 1).put(k2p40).b;
    const Bytes kl = Writer().header(0, 1).put(k2p40).bytes(64, 0).b;
    const Bytes tn = Writer().header(1, 0).put(k2p40).bytes(64, 0).b;
    const struct { const Bytes* w; Limits lim; std::string msg; } cases[] = {
        {&tc, {}, "tensor count 1099511627776 exceeds the limit 65536"},
        {&tc, huge, "file truncated: 1099511627776 tensor descriptors cannot fit in the remaining 64 "
                     "bytes"},
        {&kc, {}, "metadata count 1099511627776 exceeds the limit 65536"},
        {&kc, huge, "metadata entry 0: bad or truncated key"},
        {&kc_at_limit, {}, "metadata entry 0: bad or truncated key"},
        {&al, {}, "k: array length 1099511627776 exceeds the limit 16777216"},
        {&al, huge, "k: array of 1099511627776 elements runs past the end of the file"},
        {&asl, {}, "k: array length 1099511627776 exceeds the limit 16777216"},
        {&asl, huge, "k: array of 1099511627776 strings runs past the end of the file"},
        {&sl, {}, "k: bad or truncated string"},
        {&sl, huge, "k: bad or truncated string"},
        {&el, huge, "k: element 0: bad or truncated string"},
        {&kl, huge, "metadata entry 0: bad or truncated key"},
        {&tn, huge, "tensor 0: bad or truncated name"},
    };
    for (const auto& c : cases) {
        const uint64_t before = g_new_bytes.load();
        EXPECT_EQ(parse_error(*c.w, c.lim), c.msg);
        EXPECT_LT(g_new_bytes.load() - before, kSmall) << c.msg;  // bytes allocated by parsing
    }
}

// ---- Real files: the tiny fixture (tools/make_tiny_model.py, written by gguf-py's GGUFWriter)
// and the default model. Expected values were read with gguf-py's GGUFReader (gguf 0.19.0).

// STRATA_SOURCE_DIR should be the repo root; the CMake helper currently passes src/.
std::string repo_file(const std::string& rel) {
    std::string root = STRATA_SOURCE_DIR;
    if (!std::ifstream(root + "/tools/fetch_model.sh").good()) root += "/..";
    return root + rel;
}

using Hist = std::map<std::string, int>;
Hist type_histogram(const File& g) {
    Hist h;
    for (const TensorInfo& t : g.tensors()) ++h[std::string(dtype_name(t.type))];
    return h;
}

TEST(GgufRealModel, TinyLlamaFixture) {
    auto f = File::open(repo_file("/tests/fixtures/tiny-llama.gguf"));
    ASSERT_TRUE(f) << f.error().message();
    const File& g = **f;
    EXPECT_EQ(*g.get_string("general.architecture"), "llama");
    expect_ints(g, {{"llama.embedding_length", 64}, {"llama.block_count", 2},
                    {"llama.attention.head_count", 4}, {"llama.attention.head_count_kv", 2},
                    {"llama.feed_forward_length", 128}, {"llama.context_length", 256}});
    EXPECT_EQ(*g.get_float("llama.rope.freq_base"), 10000.0);
    EXPECT_EQ(g.find("tokenizer.ggml.tokens")->strs.size(), 49152u);
    EXPECT_EQ(g.find("tokenizer.ggml.merges")->strs.size(), 48900u);
    ASSERT_EQ(g.tensors().size(), 20u);
    EXPECT_TRUE(!g.find_tensor("output.weight") && g.find_tensor("token_embd.weight")->type == DType::Q8_0);
    EXPECT_EQ(g.find_tensor("blk.1.attn_k.weight")->shape_str(), "[64, 32]");
    EXPECT_EQ(g.find_tensor("blk.0.ffn_down.weight")->shape_str(), "[128, 64]");
    EXPECT_EQ(type_histogram(g), (Hist{{"F16", 2}, {"F32", 6}, {"Q4_0", 2}, {"Q4_1", 3},
                                       {"Q5_0", 2}, {"Q5_1", 2}, {"Q8_0", 3}}));
}

TEST(GgufRealModel, SmolLM2Q4_1) {
    const std::string path = repo_file("/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if (!std::ifstream(path).good()) GTEST_SKIP() << path << " missing (run tools/fetch_model.sh)";
    auto f = File::open(path);
    ASSERT_TRUE(f) << f.error().message();
    const File& g = **f;
    EXPECT_TRUE(g.version() == 3u && g.alignment() == 32u);
    EXPECT_EQ(g.metadata().size(), 33u);
    EXPECT_EQ(g.data_offset(), 1785664u);
    EXPECT_EQ(g.file_size(), 98362432u);

    EXPECT_EQ(*g.get_string("general.architecture"), "llama");
    expect_ints(g, {{"general.file_type", 3}, {"general.quantization_version", 2},
                    {"llama.block_count", 30}, {"llama.context_length", 8192},
                    {"llama.embedding_length", 576}, {"llama.feed_forward_length", 1536},
                    {"llama.attention.head_count", 9}, {"llama.attention.head_count_kv", 3},
                    {"llama.rope.dimension_count", 64}, {"llama.vocab_size", 49152},
                    {"tokenizer.ggml.bos_token_id", 1}, {"tokenizer.ggml.eos_token_id", 2},
                    {"tokenizer.ggml.unknown_token_id", 0}, {"tokenizer.ggml.padding_token_id", 2}});
    EXPECT_EQ(*g.get_float("llama.rope.freq_base"), 100000.0);
    EXPECT_EQ(*g.get_float("llama.attention.layer_norm_rms_epsilon"), double(1e-5f));
    EXPECT_EQ(g.find("llama.block_count")->type, ValueType::U32);
    EXPECT_EQ(*g.get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(*g.get_string("tokenizer.ggml.pre"), "smollm");
    EXPECT_FALSE(*g.get_bool("tokenizer.ggml.add_bos_token"));
    EXPECT_FALSE(*g.get_bool("tokenizer.ggml.add_space_prefix"));
    const Value* tokens = g.find("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens);
    ASSERT_EQ(tokens->strs.size(), 49152u);
    EXPECT_EQ(std::vector<std::string>(tokens->strs.begin(), tokens->strs.begin() + 3),
              (std::vector<std::string>{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}));
    EXPECT_EQ(tokens->strs[198], "\xC4\x8A");  // U+010A, the mapped '\n'
    EXPECT_EQ(g.find("tokenizer.ggml.token_type")->ints.size(), 49152u);
    EXPECT_EQ(g.find("tokenizer.ggml.merges")->strs.size(), 48900u);
    EXPECT_EQ(g.get_string("tokenizer.chat_template")->rfind("{% for message in messages %}", 0), 0u);

    // 272 = token_embd + 30 x 9 + output_norm; token_embd (the tied head) is Q8_0.
    ASSERT_EQ(g.tensors().size(), 272u);
    EXPECT_EQ(type_histogram(g), (Hist{{"F32", 61}, {"Q4_1", 210}, {"Q8_0", 1}}));
    uint64_t total = 0;
    for (const TensorInfo& t : g.tensors()) {
        total += t.nbytes;
        EXPECT_EQ(t.offset % 32, 0u) << t.name;
    }
    EXPECT_EQ(total, 96576768u);  // spec §6; exactly fills the data section
    EXPECT_EQ(g.data_offset() + total, g.file_size());
    EXPECT_EQ(g.find_tensor("output.weight"), nullptr);

    const TensorInfo* emb = g.find_tensor("token_embd.weight");
    ASSERT_TRUE(emb);
    EXPECT_TRUE(emb->type == DType::Q8_0 && emb->offset == 0u);
    EXPECT_EQ(emb->shape_str(), "[576, 49152]");
    const struct { const char* name; const char* shape; DType type; } layer[] = {
        {"attn_norm", "[576]", DType::F32},          {"ffn_norm", "[576]", DType::F32},
        {"attn_q", "[576, 576]", DType::Q4_1},       {"attn_k", "[576, 192]", DType::Q4_1},
        {"attn_v", "[576, 192]", DType::Q4_1},       {"attn_output", "[576, 576]", DType::Q4_1},
        {"ffn_gate", "[576, 1536]", DType::Q4_1},    {"ffn_up", "[576, 1536]", DType::Q4_1},
        {"ffn_down", "[1536, 576]", DType::Q4_1},
    };
    for (int l = 0; l < 30; ++l) {
        for (const auto& e : layer) {
            const std::string n = "blk." + std::to_string(l) + "." + e.name + ".weight";
            const TensorInfo* t = g.find_tensor(n);
            ASSERT_TRUE(t) << n;
            EXPECT_EQ(t->shape_str(), e.shape) << n;
            EXPECT_EQ(t->type, e.type) << n;
        }
    }
    const TensorInfo* norm = g.find_tensor("output_norm.weight");
    ASSERT_TRUE(norm);
    EXPECT_EQ(norm->shape_str(), "[576]");
    float w0;  // a norm weight read at the right offset is a moderate positive number
    std::memcpy(&w0, norm->data, 4);
    EXPECT_TRUE(w0 > 0.01f && w0 < 100.f) << w0;
}

}  // namespace
}  // namespace strata::gguf

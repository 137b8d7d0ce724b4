// File formats: safetensors round trips, F16/BF16 decoding and every malformed-header error;
// PEFT configs (rank/alpha patterns, rslora, rejected features) with exact messages; GGUF
// LoRA checks; and PEFT -> GGUF -> PEFT reproducing the tensors bit for bit (F32).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "adapters/test_util.h"
#include "adapters/gguf_lora.h"
#include "adapters/peft.h"
#include "adapters/safetensors.h"
#include "gguf/gguf.h"
#include "tensor/dtype.h"

namespace strata::adapters {
namespace {

ModelShape shape() { return testing::small_shape(); }

std::vector<uint8_t> raw(const std::string& header, size_t data_bytes) {
    std::vector<uint8_t> b(8 + header.size() + data_bytes, 0);
    const uint64_t n = header.size();
    std::memcpy(b.data(), &n, 8);
    std::memcpy(b.data() + 8, header.data(), header.size());
    return b;
}

std::string err(const std::vector<uint8_t>& b) { return parse_safetensors(b.data(), b.size(), "x.st").error().message(); }

TEST(Safetensors, RoundTripAndHalfDecoding) {
    StFile f;
    f.metadata["format"] = "pt";
    f.tensors["a"] = {"F32", {2, 3}, {1, -2, 3.5f, 0, 1e-3f, 7}};
    f.tensors["b"] = {"F32", {1}, {42}};
    for (bool f16 : {false, true}) {
        auto bytes = serialize_safetensors(f, f16);
        uint64_t n;
        std::memcpy(&n, bytes.data(), 8);
        EXPECT_EQ(n % 8, 0u);  // header padded to 8 bytes
        auto r = parse_safetensors(bytes.data(), bytes.size(), "mem");
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->metadata["format"], "pt");
        EXPECT_EQ(r->tensors["a"].shape, (std::vector<int64_t>{2, 3}));
        for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(r->tensors["a"].data[i], f.tensors["a"].data[i], f16 ? 1e-3 : 0);
    }
    // BF16 0x3FC0 = 1.5 and F16 0xC000 = -2.
    auto b = raw(R"({"h":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]},"g":{"dtype":"F16","shape":[1],"data_offsets":[2,4]}})", 4);
    const size_t d = b.size() - 4;
    b[d] = 0xC0; b[d + 1] = 0x3F; b[d + 2] = 0x00; b[d + 3] = 0xC0;
    auto r = parse_safetensors(b.data(), b.size(), "mem");
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->tensors["h"].data[0], 1.5f);
    EXPECT_EQ(r->tensors["g"].data[0], -2.f);
}

TEST(Safetensors, MalformedFilesGiveExactErrors) {
    std::vector<uint8_t> big(16, 0);
    const uint64_t huge = 200ull << 20;
    std::memcpy(big.data(), &huge, 8);
    EXPECT_EQ(err(big), "x.st: safetensors header of 209715200 bytes exceeds the 104857600 byte limit");
    EXPECT_EQ(err({1, 2, 3}), "x.st: not a safetensors file: only 3 bytes");
    EXPECT_EQ(err(raw("[1]", 0)), "x.st: safetensors header is not a JSON object");
    EXPECT_EQ(err(raw(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8)),
              "x.st: w: data_offsets [0, 16] out of bounds (data area is 8 bytes)");
    EXPECT_EQ(err(raw(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)),
              "x.st: w: F32 x [3] needs 12 bytes, data_offsets give 8");
    EXPECT_EQ(err(raw(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)),
              "x.st: data area has a gap at byte 0 (tensors must tile it exactly)");
    EXPECT_EQ(err(raw(R"({"w":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}})", 4)), "x.st: w: unknown dtype \"Q9\"");
    EXPECT_EQ(err(raw(R"({"w":{"dtype":"F32","shape":[1]}})", 4)), "x.st: w: needs dtype, shape and data_offsets [begin, end]");
}

// A PEFT adapter for shape(): q (8x8) and down (8x12) in layer 1, rank 2.
StFile peft_tensors() {
    StFile f;
    auto ramp = [](size_t n, float base) {
        std::vector<float> v(n);
        for (size_t i = 0; i < n; ++i) v[i] = base + 0.25f * float(i);
        return v;
    };
    const std::string p = "base_model.model.model.layers.1.";
    f.tensors[p + "self_attn.q_proj.lora_A.weight"] = {"F32", {2, 8}, ramp(16, 0)};
    f.tensors[p + "self_attn.q_proj.lora_B.weight"] = {"F32", {8, 2}, ramp(16, 1)};
    f.tensors[p + "mlp.down_proj.lora_A.weight"] = {"F32", {2, 12}, ramp(24, -1)};
    f.tensors[p + "mlp.down_proj.lora_B.weight"] = {"F32", {8, 2}, ramp(16, 2)};
    return f;
}
const std::string kCfg = R"({"peft_type":"LORA","r":2,"lora_alpha":4})";

TEST(Peft, ReadsScalesPatternsAndPermutesQ) {
    auto ad = parse_peft(kCfg, peft_tensors(), shape(), "ad");
    ASSERT_TRUE(ad) << ad.error().message();
    ASSERT_EQ(ad->modules.size(), 2u);
    const LoraModule& q = ad->modules[0];
    EXPECT_EQ(q.role, WeightRole::kQ);
    EXPECT_FLOAT_EQ(q.scale, 2.f);
    // HF row 1 of head 0 (i = 0, j = 1) lands on GGUF row 2; B is [8][2] with ramp 1 + 0.25 k.
    EXPECT_FLOAT_EQ(q.b[2 * 2], 1 + 0.25f * 2);
    EXPECT_FLOAT_EQ(q.b[1 * 2], 1 + 0.25f * 4);  // GGUF row 1 = HF row 2 (i = 1, j = 0)
    EXPECT_FLOAT_EQ(ad->modules[1].b[2], 2 + 0.25f * 2);  // down_proj is not permuted
    auto rs = parse_peft(R"({"peft_type":"LORA","r":2,"lora_alpha":4,"use_rslora":true,
                             "alpha_pattern":{"down_proj":8}})", peft_tensors(), shape(), "ad");
    ASSERT_TRUE(rs) << rs.error().message();
    EXPECT_FLOAT_EQ(rs->modules[0].scale, float(4 / std::sqrt(2.0)));
    EXPECT_FLOAT_EQ(rs->modules[1].scale, float(8 / std::sqrt(2.0)));
    auto rp = parse_peft(R"({"peft_type":"LORA","r":4,"lora_alpha":4,"rank_pattern":{"layers\\.1\\..*":2}})",
                         peft_tensors(), shape(), "ad");
    EXPECT_TRUE(rp) << rp.error().message();
}

// Keys are matched as PEFT does, `(.*\.)?(KEY)$`; plain dotted keys need no regex engine and
// regex keys are bounded before std::regex sees them (fuzz regressions: a deeply nested key
// overflowed the stack, a repeated group hung the matcher).
TEST(Peft, PatternKeys) {
    auto rank_of_q = [](const std::string& pat) -> std::string {
        auto ad = parse_peft(R"({"peft_type":"LORA","r":4,"lora_alpha":4,"rank_pattern":)" + pat + "}",
                             peft_tensors(), shape(), "ad");
        return ad ? "ok" : ad.error().message();
    };
    EXPECT_EQ(rank_of_q(R"({"q_proj":2,"down_proj":2})"), "ok");
    EXPECT_EQ(rank_of_q(R"({"model.layers.1.self_attn.q_proj":2,"layers.1.mlp.down_proj":2})"), "ok");
    EXPECT_EQ(rank_of_q(R"({"self_attn.q.proj":2,"mlp\\.down_proj":2})"), "ok");  // '.' is any character
    EXPECT_EQ(rank_of_q(R"({"f_attn.q_proj":2,"down_proj":2})"),  // not at a '.' boundary
              "ad: base_model.model.model.layers.1.self_attn.q_proj: lora_A has rank 2 but adapter_config.json says r = 4");
    EXPECT_EQ(rank_of_q(R"({"(q|k)_pro[j]":2,".*down_proj":2})"), "ok");
    EXPECT_EQ(rank_of_q(R"({"(a*)*b":2})"),
              "ad/adapter_config.json: pattern key \"(a*)*b\": repeated groups are not supported");
    EXPECT_EQ(rank_of_q(R"({"a*b*c*":2})"),
              "ad/adapter_config.json: pattern key \"a*b*c*\" is too complex (at most 4 nested groups, 2 repetition "
              "operators and 4 alternatives)");
    EXPECT_EQ(rank_of_q(R"({"q_pro{1}j":2,"a{1000}":2})"),
              "ad/adapter_config.json: pattern key \"a{1000}\": repetition counts above 64 are not supported");
    EXPECT_EQ(rank_of_q("{\"" + std::string(200, '(') + "\":2}"),
              "ad/adapter_config.json: pattern key of 200 bytes is longer than the 128 byte limit");
}

TEST(Peft, RejectsWithExactMessages) {
    auto msg = [](const std::string& cfg, const StFile& t) { return parse_peft(cfg, t, shape(), "ad").error().message(); };
    EXPECT_EQ(msg(R"({"peft_type":"IA3","r":2,"lora_alpha":4})", peft_tensors()),
              "ad/adapter_config.json: peft_type \"IA3\" is not supported (only LORA)");
    EXPECT_EQ(msg(R"({"peft_type":"LORA","r":2,"lora_alpha":4,"use_dora":true})", peft_tensors()),
              "ad/adapter_config.json: use_dora is set; DoRA adapters cannot be merged as LoRA");
    EXPECT_EQ(msg(R"({"peft_type":"LORA","r":2,"lora_alpha":4,"lora_bias":true})", peft_tensors()),
              "ad/adapter_config.json: lora_bias is set; LoRA biases are not supported");
    EXPECT_EQ(msg("{oops", peft_tensors()), "ad/adapter_config.json: not a JSON object");
    EXPECT_EQ(msg(R"({"peft_type":"LORA","r":4,"lora_alpha":4})", peft_tensors()),
              "ad: base_model.model.model.layers.1.self_attn.q_proj: lora_A has rank 2 but adapter_config.json says r = 4");
    StFile t = peft_tensors();
    t.tensors["base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector"] = {"F32", {4}, {1, 1, 1, 1}};
    EXPECT_EQ(msg(kCfg, t), "ad: base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector: DoRA magnitude vectors are not supported");
    t = peft_tensors();
    t.tensors["base_model.model.model.embed_tokens.lora_embedding_A"] = {"F32", {1}, {1}};
    EXPECT_EQ(msg(kCfg, t), "ad: base_model.model.model.embed_tokens.lora_embedding_A: embedding LoRA is not supported");
    t = peft_tensors();
    t.tensors["base_model.model.model.layers.1.self_attn.q_proj.lora_B.bias"] = {"F32", {8}, std::vector<float>(8)};
    EXPECT_EQ(msg(kCfg, t), "ad: base_model.model.model.layers.1.self_attn.q_proj.lora_B.bias: lora_bias is not supported");
    t = peft_tensors();
    t.tensors.erase("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
    EXPECT_EQ(msg(kCfg, t), "ad: base_model.model.model.layers.1.mlp.down_proj.lora_A.weight has no matching lora_B");
    t = peft_tensors();
    t.tensors["base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"] = {"F32", {2, 8}, std::vector<float>(16)};
    EXPECT_EQ(msg(kCfg, t), "ad: base_model.model.model.layers.1.mlp.down_proj: adapter is 8x8 (out x in), base weight is 8x12");
    t = peft_tensors();
    t.tensors["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"] = {"F32", {8, 3}, std::vector<float>(24)};
    EXPECT_EQ(msg(kCfg, t), "ad: base_model.model.model.layers.1.mlp.down_proj: lora_A has rank 2 but lora_B is [8, 3]");
    t = peft_tensors();
    t.tensors["base_model.model.model.layers.7.mlp.up_proj.lora_A.weight"] = {"F32", {2, 8}, std::vector<float>(16)};
    t.tensors["base_model.model.model.layers.7.mlp.up_proj.lora_B.weight"] = {"F32", {12, 2}, std::vector<float>(24)};
    EXPECT_EQ(msg(kCfg, t), "ad: base_model.model.model.layers.7.mlp.up_proj: layer 7 out of range (the base model has 2 layers)");
}

TEST(GgufLora, PeftToGgufToPeftIsBitExact) {
    auto ad = parse_peft(kCfg, peft_tensors(), shape(), "ad");
    ASSERT_TRUE(ad);
    const auto bytes = serialize_gguf_lora(*ad, shape());
    auto f = gguf::File::from_memory(bytes.data(), bytes.size());
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ((*f)->get_string("general.type").value(), "adapter");
    EXPECT_FLOAT_EQ(float((*f)->get_float("adapter.lora.alpha").value()), 4.f);
    const auto* b = (*f)->find_tensor("blk.1.attn_q.weight.lora_b");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->ne[0], 2u);  // [r, d_out]
    EXPECT_EQ(b->ne[1], 8u);
    auto back = parse_gguf_lora(**f, shape(), "mem");
    ASSERT_TRUE(back) << back.error().message();
    const auto dir = std::filesystem::temp_directory_path() / "strata_peft_roundtrip";
    ASSERT_TRUE(write_peft(dir.string(), *back, shape()).ok());
    auto again = read_peft(dir.string(), shape());
    ASSERT_TRUE(again) << again.error().message();
    auto st = read_safetensors((dir / "adapter_model.safetensors").string());
    ASSERT_TRUE(st);
    for (auto& [name, t] : peft_tensors().tensors) {
        ASSERT_TRUE(st->tensors.count(name)) << name;
        EXPECT_EQ(std::memcmp(st->tensors[name].data.data(), t.data.data(), t.data.size() * 4), 0) << name;
    }
    EXPECT_FLOAT_EQ(again->modules[0].scale, 2.f);
    std::filesystem::remove_all(dir);
}

TEST(GgufLora, ChecksArchitectureAndShapes) {
    auto ad = parse_peft(kCfg, peft_tensors(), shape(), "ad");
    ModelShape other = shape();
    other.arch = "gpt2";
    auto bytes = serialize_gguf_lora(*ad, other);
    auto f = gguf::File::from_memory(bytes.data(), bytes.size());
    EXPECT_EQ(parse_gguf_lora(**f, shape(), "a.gguf").error().message(),
              "a.gguf: general.architecture \"gpt2\" does not match the base model's \"llama\"");
    ModelShape wide = shape();
    wide.n_ff = 16;
    bytes = serialize_gguf_lora(*ad, shape());
    f = gguf::File::from_memory(bytes.data(), bytes.size());
    EXPECT_EQ(parse_gguf_lora(**f, wide, "a.gguf").error().message(),
              "a.gguf: blk.1.ffn_down.weight: lora_a is [12, 2] and lora_b is [2, 8], but the base weight is [16, 8]");
}

}  // namespace
}  // namespace strata::adapters

// Function vectors: SHA-256/CRC32 known answers, FVEC round trip and rejection of bad blobs,
// task parsing, the relevance pass (plain-gradient mode against finite differences of the
// real forward; AttnLRP mode against the independent torch reference
// tests/fixtures/fv/lrp_reference.json from tools/fv/lrp_reference.py), and injection.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "fv/extract.h"
#include "fv/fvec.h"
#include "fv/inject.h"
#include "fv/relevance.h"
#include "fv/tasks.h"
#include "model/forward.h"
#include "model/model.h"
#include "tensor/dtype.h"

namespace strata::fv {
namespace {

const std::string kRoot = STRATA_SOURCE_DIR;
const std::string kTiny = kRoot + "/tests/fixtures/tiny-llama.gguf";

std::span<const uint8_t> bytes_of(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

TEST(Hash, Sha256KnownAnswers) {
    EXPECT_EQ(hex(sha256(bytes_of(""))), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hex(sha256(bytes_of("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hex(sha256(bytes_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(hex(sha256(bytes_of(std::string(1000, 'a')))),
              "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST(Hash, Crc32KnownAnswer) { EXPECT_EQ(crc32(bytes_of("123456789")), 0xCBF43926u); }

ModelIdentity fake_identity() {
    ModelIdentity id;
    for (int i = 0; i < 32; ++i) id.hash[size_t(i)] = uint8_t(i * 7 + 1);
    id.hidden_size = 64, id.n_layers = 2, id.n_heads = 4, id.head_dim = 16;
    return id;
}

FunctionVector sample_fv(bool distributed, ValueType t) {
    const ModelIdentity id = fake_identity();
    FunctionVector fv;
    fv.distributed = distributed;
    fv.model_hash = id.hash;
    fv.hidden_size = id.hidden_size, fv.n_layers = id.n_layers, fv.n_heads = id.n_heads, fv.head_dim = id.head_dim;
    fv.dtype = t;
    fv.task = "antonym";
    fv.scale = 1.5f;
    std::mt19937 g(3);
    std::normal_distribution<float> n(0.f, 1.f);
    if (distributed) {
        fv.has_scores = true;
        for (auto [l, h] : {std::pair{0, 1}, {0, 3}, {1, 0}}) {
            FvEntry e;
            e.layer = l, e.head = h, e.score = float(l + h);
            for (int i = 0; i < 16; ++i) e.values.push_back(n(g));
            fv.entries.push_back(e);
        }
    } else {
        FvEntry e;
        e.layer = 1;
        for (int i = 0; i < 64; ++i) e.values.push_back(n(g));
        fv.entries.push_back(e);
    }
    return fv;
}

std::vector<uint8_t> with_crc(std::vector<uint8_t> b) {
    const uint32_t c = crc32(std::span<const uint8_t>(b.data(), b.size() - 4));
    std::memcpy(b.data() + b.size() - 4, &c, 4);
    return b;
}

TEST(Fvec, RoundTrip) {
    for (bool dist : {false, true}) {
        for (ValueType t : {ValueType::kF32, ValueType::kF16, ValueType::kBF16}) {
            FunctionVector fv = sample_fv(dist, t);
            auto b = serialize_fvec(fv);
            ASSERT_TRUE(b) << b.error().message();
            const size_t vb = t == ValueType::kF32 ? 4 : 2;
            const size_t n_vals = dist ? 16 : 64;
            EXPECT_EQ(b->size(), kHeaderBytes + 2 + 7 + fv.entries.size() * (4 + n_vals * vb + (dist ? 4 : 0)) + 4);
            auto back = parse_fvec(*b, fake_identity());
            ASSERT_TRUE(back) << back.error().message();
            EXPECT_EQ(back->id, fv.id);
            EXPECT_EQ(back->distributed, dist);
            EXPECT_EQ(back->task, "antonym");
            EXPECT_EQ(back->scale, 1.5f);
            ASSERT_EQ(back->entries.size(), fv.entries.size());
            for (size_t e = 0; e < fv.entries.size(); ++e) {
                EXPECT_EQ(back->entries[e].layer, fv.entries[e].layer);
                EXPECT_EQ(back->entries[e].head, dist ? fv.entries[e].head : -1);
                EXPECT_EQ(back->entries[e].values, fv.entries[e].values);  // serialize rounds in place
                if (dist) {
                    EXPECT_EQ(back->entries[e].score, fv.entries[e].score);
                }
            }
        }
    }
}

TEST(Fvec, AggregatedSmolLm2SizeUnder2KB) {
    // 576 f16 values + header + entry header + task name + CRC.
    FunctionVector fv = sample_fv(false, ValueType::kF16);
    fv.hidden_size = 576, fv.n_layers = 30, fv.n_heads = 9, fv.head_dim = 64;
    fv.entries[0].values.assign(576, 0.25f);
    auto b = serialize_fvec(fv);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->size(), 68u + 9 + 4 + 1152 + 4);
    EXPECT_LE(b->size(), 2048u);
}

TEST(Fvec, RejectsBadBlobs) {
    FunctionVector fv = sample_fv(true, ValueType::kF16);
    const std::vector<uint8_t> good = *serialize_fvec(fv);
    ASSERT_TRUE(parse_fvec(good));
    // Every truncation and every single-byte flip is rejected (CRC or a field check).
    for (size_t n = 0; n < good.size(); ++n)
        EXPECT_FALSE(parse_fvec(std::span<const uint8_t>(good.data(), n))) << "truncated to " << n;
    for (size_t i = 0; i < good.size(); ++i) {
        auto b = good;
        b[i] ^= 0x40;
        EXPECT_FALSE(parse_fvec(b)) << "flipped byte " << i;
    }
    auto expect_error = [&](auto edit, const std::string& want) {
        auto b = good;
        edit(b);
        auto r = parse_fvec(with_crc(b));
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find(want), std::string::npos) << r.error().message();
    };
    auto put16 = [](std::vector<uint8_t>& b, size_t at, uint16_t v) { std::memcpy(&b[at], &v, 2); };
    auto put32 = [](std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(&b[at], &v, 4); };
    expect_error([](auto& b) { b[0] = 'X'; }, "bad magic");
    expect_error([&](auto& b) { put16(b, 4, 2); }, "version 2");
    expect_error([&](auto& b) { put16(b, 6, 0x0f); }, "unknown bits");
    expect_error([&](auto& b) { put32(b, 40, 0); }, "hidden size 0");
    expect_error([&](auto& b) { put32(b, 44, 100000); }, "layer count");
    expect_error([&](auto& b) { put32(b, 52, 1u << 30); }, "head dim");
    expect_error([](auto& b) { b[56] = 9; }, "dtype 9");
    expect_error([](auto& b) { b[57] = 3; }, "position policy 3");
    expect_error([](auto& b) { b[58] = 1; }, "hook point must be 0");
    expect_error([](auto& b) { b[59] = 1; }, "reserved byte");
    expect_error([&](auto& b) { float f = NAN; std::memcpy(&b[60], &f, 4); }, "scale");
    expect_error([&](auto& b) { put32(b, 64, 0xFFFFFFFFu); }, "entry count");
    expect_error([&](auto& b) { put32(b, 64, 2); }, "size mismatch");
    expect_error([&](auto& b) { put16(b, 68, 200); }, "task name length");
    const size_t e0 = 68 + 2 + 7;  // first entry
    expect_error([&](auto& b) { put16(b, e0, 2); }, "layer 2 out of range");
    expect_error([&](auto& b) { put16(b, e0 + 2, 4); }, "head 4 out of range");
    expect_error([&](auto& b) { put16(b, e0 + 2, 3); }, "not sorted");
    expect_error([&](auto& b) { put16(b, e0 + 4, 0x7c00); }, "non-finite value");  // f16 +inf
    // Model checks.
    ModelIdentity other = fake_identity();
    other.hash[0] ^= 1;
    auto r = parse_fvec(good, other);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("made for another model"), std::string::npos);
    other = fake_identity();
    other.n_layers = 30;
    r = parse_fvec(good, other);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("2 layers"), std::string::npos) << r.error().message();
    EXPECT_FALSE(load_fvec("/nonexistent/x.fv", fake_identity()));
}

TEST(Tasks, ParseAndSplit) {
    std::string text;
    for (int i = 0; i < 20; ++i) text += fmt::format("{{\"input\": \"w{}\", \"output\": \"o{}\"}}\n", i, i);
    auto t = parse_task(text, "t");
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_EQ(t->pairs.size(), 20u);
    EXPECT_EQ(t->train.size(), 12u);
    EXPECT_EQ(t->test.size(), 8u);
    auto t2 = parse_task(text, "t");
    EXPECT_EQ(t2->test[0].input, t->test[0].input);  // seeded
    auto bad = [](const std::string& s, const std::string& want) {
        auto r = parse_task(s, "f.jsonl");
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find(want), std::string::npos) << r.error().message();
    };
    bad(text + "not json\n", "f.jsonl:21: not a JSON object");
    bad(text + "{\"input\": \"a\"}\n", "f.jsonl:21: missing string field \"output\"");
    bad(text + "{\"input\": \"a\", \"output\": 3}\n", "missing string field \"output\"");
    bad(text + "{\"input\": \"\", \"output\": \"b\"}\n", "must be 1..256 bytes");
    bad(text + "{\"input\": \"a\\nb\", \"output\": \"b\"}\n", "contains a newline");
    bad("{\"input\": \"a\", \"output\": \"b\"}\n", "at least 12");
    EXPECT_FALSE(load_task("/nonexistent.jsonl"));
}

TEST(Tasks, CommittedTaskFiles) {
    for (const char* name : {"antonym", "country-capital", "english-french", "present-past", "singular-plural",
                             "uppercase", "first-letter", "next-number"}) {
        auto t = load_task(kRoot + "/data/fv/" + name + ".jsonl");
        ASSERT_TRUE(t) << name << ": " << t.error().message();
        EXPECT_GE(t->pairs.size(), 100u) << name;
    }
}

struct Tiny {
    std::unique_ptr<model::Model> m;
    std::unique_ptr<model::Context> ctx;
    Tiny() {
        auto mm = model::load_model(kTiny);
        EXPECT_TRUE(mm) << mm.error().message();
        m = std::move(*mm);
        model::ContextParams p;
        p.exact = true;
        p.kv.k = p.kv.v = "fp32";
        p.n_threads = 1;
        auto c = model::Context::create(*m, p);
        EXPECT_TRUE(c) << c.error().message();
        ctx = std::move(*c);
    }
};

// Adds eps * W_O[:, col] to the o_proj output of `layer` at the last row (a perturbation of
// head-output coordinate `col`).
class Perturb final : public model::MatmulHook {
public:
    Perturb(int layer, int64_t col, float eps) : layer_(layer), col_(col), eps_(eps) {}
    void after_matmul(const model::Weight& w, const float*, int64_t n, float* y) override {
        if (w.role != model::WeightRole::kO || w.layer != layer_) return;
        std::vector<float> row(static_cast<size_t>(w.n_cols));
        for (int64_t r = 0; r < w.n_rows; ++r) {
            dequantize_row(w.type, w.data + size_t(r) * w.row_bytes, row.data(), w.n_cols);
            y[(n - 1) * w.n_rows + r] += eps_ * row[size_t(col_)];
        }
    }

private:
    int layer_;
    int64_t col_;
    float eps_;
};

nlohmann::json reference() {
    std::ifstream f(kRoot + "/tests/fixtures/fv/lrp_reference.json");
    std::stringstream ss;
    ss << f.rdbuf();
    return nlohmann::json::parse(ss.str());
}

TEST(Relevance, GradientModeMatchesFiniteDifferences) {
    Tiny t;
    const auto ref = reference();
    const std::vector<int32_t> toks = ref["tokens"].get<std::vector<int32_t>>();
    const int32_t target = ref["target"].get<int32_t>();
    auto rec = record_forward(*t.ctx, toks);
    ASSERT_TRUE(rec) << rec.error().message();
    const Relevance r = relevance_pass(*t.m, *rec, target, {}, Rules::kGradient);
    EXPECT_LT(r.attn_check, 1e-4f);  // our attention recomputation matches the forward's
    auto logit = [&](int layer, int64_t col, float eps) {
        Perturb p(layer, col, eps);
        t.ctx->clear_hooks();
        t.ctx->truncate(0);
        t.ctx->add_matmul_hook(&p);
        auto lg = t.ctx->eval(toks);
        t.ctx->clear_hooks();
        return double((*lg)[size_t(target)]);
    };
    const float eps = 0.02f;
    for (int layer : {0, 1}) {
        double max_g = 0, max_err = 0;
        for (int64_t col = 0; col < 64; col += 3) {
            const double fd = (logit(layer, col, eps) - logit(layer, col, -eps)) / (2.0 * eps);
            const double g = r.g_att[size_t(layer)][size_t(col)];
            max_g = std::max(max_g, std::fabs(g));
            max_err = std::max(max_err, std::fabs(fd - g));
        }
        EXPECT_GT(max_g, 1e-2);
        EXPECT_LT(max_err, 2e-3 * std::max(1.0, max_g)) << "layer " << layer;
    }
}

void expect_close(const std::vector<float>& got, const nlohmann::json& want, double rel, const std::string& what) {
    const auto w = want.get<std::vector<double>>();
    ASSERT_EQ(got.size(), w.size()) << what;
    double mx = 0, err = 0;
    for (size_t i = 0; i < w.size(); ++i) mx = std::max(mx, std::fabs(w[i])), err = std::max(err, std::fabs(w[i] - double(got[i])));
    EXPECT_LE(err, rel * std::max(mx, 1e-6)) << what << ": max error " << err << " of max " << mx;
}

TEST(Relevance, MatchesIndependentReference) {
    Tiny t;
    const auto ref = reference();
    const auto toks = ref["tokens"].get<std::vector<int32_t>>();
    const auto labels = ref["labels"].get<std::vector<int32_t>>();
    const int32_t target = ref["target"].get<int32_t>();
    auto rec = record_forward(*t.ctx, toks);
    ASSERT_TRUE(rec);
    for (auto [mode, rules] : {std::pair{"lrp", Rules::kLrp}, {"gradient", Rules::kGradient}}) {
        const auto& R = ref[mode];
        const Relevance r = relevance_pass(*t.m, *rec, target, labels, rules);
        EXPECT_NEAR(r.target_logit, R["target_logit"].get<double>(), 2e-3);
        expect_close(r.g_embed, R["g_embed"], 2e-3, std::string(mode) + " g_embed");
        const int64_t H = t.m->hp.n_head;
        for (size_t l = 0; l < 2; ++l) {
            const auto& RL = R["layers"][l];
            const std::string tag = fmt::format("{} layer {} ", mode, l);
            expect_close(r.g_att[l], RL["g_att"], 2e-3, tag + "g_att");
            expect_close(r.attn_rel[l], RL["attn_rel"], 2e-3, tag + "attn_rel");
            auto slice = [&](const std::vector<float>& v) {
                return std::vector<float>(v.begin() + int64_t(l) * H, v.begin() + int64_t(l + 1) * H);
            };
            expect_close(slice(r.score_labels), RL["score_labels"], 2e-3, tag + "score_labels");
            expect_close(slice(r.score_all), RL["score_all"], 2e-3, tag + "score_all");
            expect_close(slice(r.score_signed), RL["score_signed"], 2e-3, tag + "score_signed");
        }
    }
}

TEST(Inject, DistributedEqualsAttentionOutputVectorAndPoliciesPickRows) {
    Tiny t;
    auto id = model_identity(*t.m);
    ASSERT_TRUE(id);
    const std::vector<int32_t> toks = {1, 48, 42, 216, 3324, 198};
    auto run = [&](std::vector<std::shared_ptr<const FunctionVector>> vs) {
        FvHook hook(*t.m);
        for (auto& v : vs) EXPECT_TRUE(hook.add(v, 1.f));
        t.ctx->clear_hooks();
        t.ctx->truncate(0);
        hook.attach(*t.ctx);
        auto lg = t.ctx->eval(toks, true);
        std::vector<float> out(lg->begin(), lg->end());
        t.ctx->clear_hooks();
        return out;
    };
    const auto base = run({});
    // Distributed: two heads in layer 0.
    FunctionVector d;
    d.distributed = true;
    d.model_hash = id->hash;
    d.hidden_size = 64, d.n_layers = 2, d.n_heads = 4, d.head_dim = 16;
    d.dtype = ValueType::kF32;
    std::mt19937 g(5);
    std::normal_distribution<float> n(0.f, 1.f);
    for (int h : {1, 2}) {
        FvEntry e;
        e.layer = 0, e.head = h;
        for (int i = 0; i < 16; ++i) e.values.push_back(n(g));
        d.entries.push_back(e);
    }
    ASSERT_TRUE(serialize_fvec(d));
    // The same as one aggregated vector at the attention output of layer 0.
    FunctionVector a = d;
    a.distributed = false;
    a.hook_point = HookPoint::kAttentionOutput;
    FvEntry e;
    e.layer = 0;
    e.values.assign(64, 0.f);
    for (const auto& de : d.entries) add_head_output(t.m->layers[0].wo, de.head, 16, de.values.data(), 1.f, e.values.data());
    a.entries = {e};
    ASSERT_TRUE(serialize_fvec(a));
    const auto ld = run({std::make_shared<const FunctionVector>(d)});
    const auto la = run({std::make_shared<const FunctionVector>(a)});
    const size_t V = size_t(t.m->hp.n_vocab), T = toks.size();
    double diff_last = 0, diff_da = 0, diff_earlier = 0;
    for (size_t i = 0; i < V; ++i) {
        diff_last = std::max(diff_last, double(std::fabs(ld[(T - 1) * V + i] - base[(T - 1) * V + i])));
        diff_da = std::max(diff_da, double(std::fabs(ld[(T - 1) * V + i] - la[(T - 1) * V + i])));
        for (size_t p = 0; p + 1 < T; ++p) diff_earlier = std::max(diff_earlier, double(std::fabs(ld[p * V + i] - base[p * V + i])));
    }
    EXPECT_GT(diff_last, 1e-2);      // the vector changes the last position
    EXPECT_LT(diff_da, 1e-4);        // distributed == summed attention-output vector
    EXPECT_EQ(diff_earlier, 0.0);    // earlier positions untouched (policy last+generated)
    // Policy "all" changes earlier rows; a block-output vector at the last layer shifts logits.
    FunctionVector b = a;
    b.hook_point = HookPoint::kBlockOutput;
    b.policy = PositionPolicy::kAll;
    ASSERT_TRUE(serialize_fvec(b));
    const auto lb = run({std::make_shared<const FunctionVector>(b)});
    double diff_b0 = 0;
    for (size_t i = 0; i < V; ++i) diff_b0 = std::max(diff_b0, double(std::fabs(lb[i] - base[i])));
    EXPECT_GT(diff_b0, 1e-2);
    // Cache keys: stable, order-independent, scale-sensitive.
    FvHook h1(*t.m), h2(*t.m), h3(*t.m);
    auto pa = std::make_shared<const FunctionVector>(a), pb = std::make_shared<const FunctionVector>(b);
    ASSERT_TRUE(h1.add(pa, 1.f) && h1.add(pb, 2.f));
    ASSERT_TRUE(h2.add(pb, 2.f) && h2.add(pa, 1.f));
    ASSERT_TRUE(h3.add(pa, 1.f) && h3.add(pb, 1.f));
    EXPECT_EQ(h1.cache_key(), h2.cache_key());
    EXPECT_NE(h1.cache_key(), h3.cache_key());
    EXPECT_EQ(FvHook(*t.m).cache_key(), "");
}

TEST(Inject, ParseSpec) {
    auto s = parse_fv_spec("a/b.fv:2.5");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->path, "a/b.fv");
    EXPECT_EQ(s->scale, 2.5f);
    s = parse_fv_spec("c:/x.fv");  // not a number after the colon: all of it is the path
    ASSERT_TRUE(s);
    EXPECT_EQ(s->path, "c:/x.fv");
    EXPECT_FALSE(parse_fv_spec("x.fv:1e9"));
    EXPECT_FALSE(parse_fv_spec(":2"));
}

TEST(Extract, TinyModelEndToEnd) {
    Tiny t;
    auto tok = Tokenizer::from_gguf(*t.m->file);
    ASSERT_TRUE(tok);
    auto task = load_task(kRoot + "/data/fv/antonym.jsonl");
    ASSERT_TRUE(task);
    auto id = model_identity(*t.m);
    ASSERT_TRUE(id);
    ExtractParams p;
    p.n_prompts = 3;
    p.n_score_prompts = 2;
    p.shots = 3;
    p.heads = 3;
    for (Method m : {Method::kCie, Method::kMean}) {
        p.method = m;
        auto r = extract(*t.m, *t.ctx, **tok, *task, p, *id);
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->heads.size(), 3u);
        EXPECT_EQ(r->cost.forward_passes, m == Method::kCie ? 5 : 3);
        EXPECT_EQ(r->cost.patched_runs, m == Method::kCie ? 2 * 8 : 0);
        auto b = serialize_fvec(r->fv);
        ASSERT_TRUE(b);
        EXPECT_TRUE(parse_fvec(*b, *id));
        auto st = stats_from_json(stats_to_json(r->stats, r->cost, "antonym"), *t.m);
        ASSERT_TRUE(st) << st.error().message();
        EXPECT_EQ(st->mean, r->stats.mean);
    }
}

}  // namespace
}  // namespace strata::fv

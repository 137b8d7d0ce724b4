// Golden tests of the forward pass against llama.cpp (llama-cpp-python 0.3.36, the
// independent reference), with fixtures made by tools/dump_llamacpp_reference.py:
//  - the tiny random-weight fixture (tests/fixtures/tiny-llama.gguf, every 32-block type),
//  - the real default model on 8 chat prompts: last-position logits and 64 greedy tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/forward.h"
#include "tensor/cpu/kernels.h"

namespace strata::model {
namespace {

std::string root() { return STRATA_SOURCE_DIR; }

std::vector<float> read_f32(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::vector<float> v;
    if (!f) return v;
    f.seekg(0, std::ios::end);
    v.resize(size_t(f.tellg()) / 4);
    f.seekg(0);
    f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * 4));
    return v;
}

nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path);
    return nlohmann::json::parse(f, nullptr, false);
}

struct Compare {
    double max_abs = 0, rms = 0;
    bool top1_same = false;
};

Compare compare(std::span<const float> ours, const std::vector<float>& ref) {
    Compare c;
    size_t a = 0, b = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double d = double(ours[i]) - ref[i];
        c.max_abs = std::max(c.max_abs, std::fabs(d));
        c.rms += d * d;
        if (ours[i] > ours[a]) a = i;
        if (ref[i] > ref[b]) b = i;
    }
    c.rms = std::sqrt(c.rms / double(ref.size()));
    c.top1_same = a == b;
    return c;
}

int32_t argmax(std::span<const float> v) {
    size_t b = 0;
    for (size_t i = 1; i < v.size(); ++i)
        if (v[i] > v[b]) b = i;
    return int32_t(b);
}

// Tolerances.
//  Sequential (decode-path) logits: Strata's default mode reproduces llama.cpp's CPU
//  arithmetic (8-bit activation quantizer, integer block dots, f16 attention dots, ggml's
//  exp, fused RoPE), so on an AVX-512 machine -- the kind the references were made on --
//  the logits must be bit-identical and every greedy token the same. Elsewhere our kernels
//  sum in another order and only the batched-prefill tolerance applies.
//  Batched-prefill logits: llama.cpp's batched and one-token-at-a-time runs of the same
//  prompt differ by up to 1.24 (max |diff| over the vocab) and 0.56 rms on these prompts
//  (tools/measure_llamacpp_spread.py); SmolLM2's residual outliers amplify 1-ulp
//  differences through the 8-bit activation quantizer. We allow 1.5 / 0.6 and require the
//  same top-1 token.
struct Tolerance {
    double max_abs, rms;
};

void run_reference(const std::string& ref_name, const std::string& model_path, Tolerance batch_tol) {
    const std::string dir = root() + "/tests/fixtures/reference/";
    auto ref = read_json(dir + ref_name);
    ASSERT_FALSE(ref.is_discarded()) << "cannot read " << dir + ref_name;
    auto model = load_model(model_path);
    ASSERT_TRUE(model) << model.error().message() << " (run `make model`)";
    const bool bit_exact = cpu::detected_isa() >= cpu::Isa::kAvx512;
    const Tolerance seq_tol = bit_exact ? Tolerance{0.0, 0.0} : batch_tol;
    int identical_runs = 0;
    for (const auto& cs : ref["cases"]) {
        const std::string name = cs["name"];
        SCOPED_TRACE(name);
        ContextParams cp;
        cp.n_ctx = ref["n_ctx"];
        cp.n_threads = 2;
        cp.flash_attn = false;  // llama-cpp-python's Llama() default, which made these fixtures
        const std::vector<int32_t> prompt = cs["prompt_tokens"];

        // (1) Batched prefill vs llama.cpp's batched prefill.
        {
            auto ctx = Context::create(**model, cp);
            ASSERT_TRUE(ctx);
            auto logits = (*ctx)->eval(prompt);
            ASSERT_TRUE(logits) << logits.error().message();
            const auto ref_logits = read_f32(dir + std::string(cs["batch_logits_file"]));
            ASSERT_EQ(ref_logits.size(), logits->size());
            const Compare c = compare(*logits, ref_logits);
            std::printf("  %s: batched prefill: max|diff| %.4f rms %.4f top1 %s\n", name.c_str(), c.max_abs, c.rms,
                        c.top1_same ? "same" : "DIFFERENT");
            EXPECT_LE(c.max_abs, batch_tol.max_abs);
            EXPECT_LE(c.rms, batch_tol.rms);
            EXPECT_TRUE(c.top1_same);
        }

        // (2) One token per eval, as llama.cpp's reference run, then 64 greedy tokens.
        auto ctx = Context::create(**model, cp);
        ASSERT_TRUE(ctx);
        std::span<const float> cur;
        for (int32_t t : prompt) {
            auto r = (*ctx)->eval(std::span<const int32_t>(&t, 1));
            ASSERT_TRUE(r) << r.error().message();
            cur = *r;
        }
        const auto ref_logits = read_f32(dir + std::string(cs["logits_file"]));
        ASSERT_EQ(ref_logits.size(), cur.size());
        const Compare c = compare(cur, ref_logits);
        std::printf("  %s: sequential: max|diff| %.6f rms %.6f\n", name.c_str(), c.max_abs, c.rms);
        EXPECT_LE(c.max_abs, seq_tol.max_abs);
        EXPECT_LE(c.rms, seq_tol.rms);

        const std::vector<int32_t> want = cs["greedy_tokens"];
        const std::vector<double> margin = cs["greedy_margin"];
        std::vector<int32_t> got;
        for (size_t i = 0; i < want.size(); ++i) {
            const int32_t t = argmax(cur);
            got.push_back(t);
            if (i + 1 == want.size()) break;
            auto next = (*ctx)->eval(std::span<const int32_t>(&t, 1));
            ASSERT_TRUE(next);
            cur = *next;
        }
        size_t first_diff = want.size();
        for (size_t i = 0; i < want.size(); ++i)
            if (got[i] != want[i]) {
                first_diff = i;
                break;
            }
        if (first_diff == want.size()) {
            ++identical_runs;
            std::printf("  %s: %zu greedy tokens identical\n", name.c_str(), want.size());
        } else {
            std::printf("  %s: greedy tokens diverge at step %zu (llama.cpp's top-2 margin there %.4f)\n",
                        name.c_str(), first_diff, margin[first_diff]);
        }
        if (bit_exact) {
            EXPECT_EQ(first_diff, want.size()) << "greedy tokens differ from llama.cpp";
        }
    }
    std::printf("  %d of %zu greedy runs identical (%s)\n", identical_runs, ref["cases"].size(),
                bit_exact ? "bit-exact mode required" : "no AVX-512: tolerance mode");
}

TEST(Golden, TinyModelMatchesLlamaCpp) {
    // Every 32-block weight type; small logits, so the batched tolerance is tighter.
    run_reference("tiny-llama.json", root() + "/tests/fixtures/tiny-llama.gguf", {0.05, 0.01});
}

TEST(Golden, SmolLM2MatchesLlamaCpp) {
    run_reference("smollm2-135m-q4_1.json", root() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf", {1.5, 0.6});
}

}  // namespace
}  // namespace strata::model

namespace strata::model {
namespace {

// The 8-bit mode against llama.cpp as people run it (tools/dump_llamacpp_parity.py): 30
// raw prompts of 1 to 300 tokens, each prefilled in one batch and continued greedily for
// 64 tokens, with llama.cpp's flash attention (its CPU default) and without (-fa off), 2
// threads. Every continuation must be token-identical. The fixture was recorded with
// llama.cpp built natively on an AVX-512 machine without AVX512-FP16; Strata's 8-bit
// kernels compute the same bits from AVX2 up, which the forced-AVX2 pass checks (so on
// any AVX2 CPU Strata equals that llama.cpp build; README, "Numerics").
// Every continuation must match, except that sequences longer than `exact_upto` tokens
// (prompt + generated) need only count towards `min_identical` per mode.
void run_parity(const std::string& fixture, const std::string& model_path, bool forced_avx2_pass,
                size_t exact_upto = SIZE_MAX, int min_identical = 0) {
    if (cpu::detected_isa() < cpu::Isa::kAvx2) GTEST_SKIP() << "the 8-bit kernels match llama.cpp from AVX2 up";
    const std::string path = root() + "/tests/fixtures/reference/" + fixture;
    auto ref = read_json(path);
    ASSERT_FALSE(ref.is_discarded()) << "cannot read " << path;
    auto model = load_model(model_path);
    ASSERT_TRUE(model) << model.error().message() << " (run `make models`)";
    const int n_gen = ref["n_gen"];
    const int64_t n_ctx = ref.value("n_ctx", 0);
    // Every prompt at the detected ISA level; every fifth again with the kernels forced
    // to AVX2 (the level the statement in the README starts from).
    struct Level {
        cpu::Isa isa;
        size_t stride;
    };
    std::vector<Level> levels = {{cpu::detected_isa(), 1}};
    if (forced_avx2_pass && cpu::detected_isa() > cpu::Isa::kAvx2) levels.push_back({cpu::Isa::kAvx2, 5});
    for (const Level& lv : levels)
    for (const char* mode : {"fa_on", "fa_off"}) {
        cpu::force_isa(lv.isa);
        int identical = 0, total = 0, required = 0, required_identical = 0;
        for (size_t p = 0; p < ref["prompts"].size(); p += lv.stride) {
            const std::vector<int32_t> prompt = ref["prompts"][p]["tokens"];
            const std::vector<int32_t> want = ref["modes"][mode][p]["greedy"];
            ContextParams cp;
            cp.n_ctx = n_ctx;
            cp.n_threads = ref["n_threads"];
            cp.flash_attn = std::string(mode) == "fa_on";
            auto ctx = Context::create(**model, cp);
            ASSERT_TRUE(ctx);
            // The prompt in llama.cpp's micro-batches of 512 tokens (n_ubatch).
            Result<std::span<const float>> r = invalid_input("empty prompt");
            for (size_t p0 = 0; p0 < prompt.size(); p0 += 512) {
                r = (*ctx)->eval(std::span<const int32_t>(prompt).subspan(p0, std::min<size_t>(512, prompt.size() - p0)));
                ASSERT_TRUE(r) << r.error().message();
            }
            std::vector<int32_t> got;
            for (int i = 0; i < n_gen; ++i) {
                const int32_t t = argmax(*r);
                got.push_back(t);
                r = (*ctx)->eval(std::span<const int32_t>(&t, 1));
                ASSERT_TRUE(r) << r.error().message();
            }
            size_t first_diff = 0;
            while (first_diff < got.size() && got[first_diff] == want[first_diff]) ++first_diff;
            ++total;
            const bool must = prompt.size() + size_t(n_gen) <= exact_upto;
            required += must;
            if (first_diff == got.size()) {
                ++identical;
                required_identical += must;
            } else
                std::printf("  %s at %s, prompt %zu (%zu tokens): first difference at generated token %zu\n", mode,
                            cpu::isa_name(lv.isa), p,
                            prompt.size(), first_diff);
        }
        std::printf("  %s at %s: %d of %d continuations token-identical to llama.cpp\n", mode, cpu::isa_name(lv.isa),
                    identical, total);
        EXPECT_EQ(required_identical, required) << mode << " at " << cpu::isa_name(lv.isa);
        EXPECT_GE(identical, std::min(total, std::max(required, min_identical))) << mode;
    }
    cpu::force_isa(cpu::detected_isa());
}

TEST(LlamaCppParity, RawPromptsGreedyTokenIdentical) {
    run_parity("parity-smollm2-135m-q4_1.json", root() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf", true);
}

// Gemma 3 270M Q4_K_M (`make models`): Q5_0 / Q8_0 / Q4_K (repacked 8x8 in llama.cpp) /
// Q6_K weights, GELU, q/k and post norms, sliding-window layers; prompts of 1 to 700
// tokens, past the 512-token window. llama.cpp as llama-completion runs it: swa_full off,
// n_ctx the training context. Within the window every continuation must match. Past it,
// llama.cpp's window cache hands the cells of positions that left the window to new tokens,
// so (we believe; not yet reproduced) its attention then sums keys in another order than
// ours (position order): the two sequences that go past it need not match, but at least 8
// of the 9 must (issue #15's target).
TEST(LlamaCppParity, Gemma3GreedyTokenIdentical) {
    const std::string path = root() + "/models/gemma-3-270m-q4_k_m.gguf";
    if (!std::ifstream(path)) GTEST_SKIP() << path << " is absent (run `make models`)";
    run_parity("parity-gemma3-270m-q4_k_m.json", path, false, /*exact_upto=*/512, /*min_identical=*/8);
}

// eval_batch over several sequences gives each the logits it gets alone. Exact mode (f32
// activations): batched rows only change f32 summation order, so 1e-3 is generous; in the
// default mode an 8-bit activation rounding flip is amplified by the model (see README).
TEST(Batch, MatchesSeparateEvalsInExactMode) {
    auto model = load_model(root() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    ASSERT_TRUE(model) << model.error().message();
    ContextParams cp;
    cp.n_ctx = 128;
    cp.exact = true;
    const std::vector<std::vector<int32_t>> prompts = {{1, 9690, 198, 2683}, {504, 3575, 282}, {19556, 905, 17, 216, 33}};
    std::vector<std::vector<float>> alone;
    for (const auto& p : prompts) {
        auto c = Context::create(**model, cp);
        ASSERT_TRUE(c);
        auto l = (*c)->eval(p);
        ASSERT_TRUE(l);
        auto l2 = (*c)->eval(std::vector<int32_t>{260});  // one decode step too
        ASSERT_TRUE(l2);
        alone.emplace_back(l2->begin(), l2->end());
    }
    std::vector<std::unique_ptr<Context>> ctxs;
    std::vector<BatchItem> items;
    for (const auto& p : prompts) {
        ctxs.push_back(std::move(*Context::create(**model, cp)));
        items.push_back({ctxs.back().get(), p, false, {}});
    }
    ASSERT_TRUE(Context::eval_batch(items).ok());
    const std::vector<int32_t> next = {260};
    for (auto& it : items) it.tokens = next;
    ASSERT_TRUE(Context::eval_batch(items).ok());
    for (size_t b = 0; b < prompts.size(); ++b) {
        double max_abs = 0;
        for (size_t i = 0; i < alone[b].size(); ++i)
            max_abs = std::max(max_abs, std::fabs(double(items[b].logits[i]) - alone[b][i]));
        EXPECT_LT(max_abs, 1e-3) << "sequence " << b;
        EXPECT_EQ(ctxs[b]->n_past(), int64_t(prompts[b].size()) + 1);
    }
    // A sequence twice in one batch is refused.
    std::vector<BatchItem> dup = {{ctxs[0].get(), next, false, {}}, {ctxs[0].get(), next, false, {}}};
    EXPECT_EQ(Context::eval_batch(dup).message(), "eval: a sequence appears twice in one batch");
}

}  // namespace
}  // namespace strata::model

namespace strata::model {
namespace {

// The KV evaluation (docs/kv-cache.md, `strata perplexity --batch 128`) feeds text in
// 128-token chunks, which the spec allows only where chunked evaluation equals
// token-by-token decoding. In exact mode it does bit for bit: the f32 matmul kernel gives
// a (row, token) result independent of the batch, and the caches encode each written token
// (or tile) the same way whether it arrives alone or in an aligned chunk. Checked on the
// real model over 260 tokens (the FP16 sink, one quantized tile, two chunk boundaries, a
// partial tail) for the per-token, TurboQuant and tile families that the evaluation runs
// chunked; KIVI's FIFO formats (kivi*_g32_r128) quantize on step boundaries by design and
// run token-by-token.
TEST(KvEval, ChunkedEqualsTokenByTokenInExactMode) {
    auto model = load_model(root() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    ASSERT_TRUE(model) << model.error().message();
    std::vector<int32_t> toks(260);
    for (size_t i = 0; i < toks.size(); ++i) toks[i] = int32_t((i * 7919 + 13) % 49152);
#ifdef STRATA_SANITIZE  // CMakeLists.txt, option STRATA_SANITIZE
    constexpr bool kSanitized = true;
#else
    constexpr bool kSanitized = false;
#endif
    // Under ASan (about 4x slower here) one per-token and one tile format keep the memory
    // checks of both paths; the full set runs in the normal build.
    std::vector<const char*> kvs = {"fp32", "fp16", "q8_0", "turboquant3_b2", "tq_prod3", "kivi2", "kvarn_k2v2"};
    if (kSanitized) kvs = {"q8_0", "kvarn_k2v2"};
    for (const char* kv : kvs) {
        SCOPED_TRACE(kv);
        ContextParams cp;
        cp.n_ctx = 512;
        cp.exact = true;
        cp.n_threads = 1;
        cp.kv = {kv, kv};
        auto a = Context::create(**model, cp);
        auto b = Context::create(**model, cp);
        ASSERT_TRUE(a && b);
        std::vector<float> one, chunked;
        for (int32_t t : toks) {
            auto l = (*a)->eval(std::span<const int32_t>(&t, 1));
            ASSERT_TRUE(l);
            one.insert(one.end(), l->begin(), l->end());
        }
        for (size_t t0 = 0; t0 < toks.size(); t0 += 128) {
            const size_t n = std::min<size_t>(128, toks.size() - t0);
            auto l = (*b)->eval(std::span<const int32_t>(&toks[t0], n), true);
            ASSERT_TRUE(l);
            chunked.insert(chunked.end(), l->begin(), l->end());
        }
        ASSERT_EQ(chunked.size(), one.size());
        ASSERT_EQ(one.size() % toks.size(), 0u);
        const size_t V = one.size() / toks.size();
        size_t first = one.size();
        for (size_t i = 0; i < one.size() && first == one.size(); ++i)
            if (std::memcmp(&one[i], &chunked[i], 4) != 0) first = i;
        EXPECT_EQ(first, one.size()) << "first difference at token " << first / V;
    }
}

}  // namespace
}  // namespace strata::model

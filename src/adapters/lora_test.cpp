// Core LoRA helpers: the q/k row permutation against the converter's formula, its inverse,
// shape checks with exact messages, dense deltas, and the --lora FILE[:SCALE] syntax.
#include <gtest/gtest.h>

#include "adapters/test_util.h"
#include "adapters/load.h"
#include "adapters/lora.h"

namespace strata::adapters {
namespace {

using testing::small_shape;

TEST(Permutation, MatchesConverterFormula) {
    // 2 heads of 4 rows, one column holding the HF row index.
    std::vector<float> m = {0, 1, 2, 3, 4, 5, 6, 7};
    permute_rows_hf_to_gguf(m, 8, 1, 2);
    // gguf_row[h*4 + 2j + i] = hf_row[h*4 + i*2 + j]
    EXPECT_EQ(m, (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
    permute_rows_gguf_to_hf(m, 8, 1, 2);
    EXPECT_EQ(m, (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
    // Wider matrices move whole rows; head_dim 64 round trip.
    std::vector<float> big(576 * 3);
    for (size_t i = 0; i < big.size(); ++i) big[i] = float(i);
    auto orig = big;
    permute_rows_hf_to_gguf(big, 576, 3, 9);
    EXPECT_NE(big, orig);
    EXPECT_EQ(big[3 * 1], orig[3 * 32]);  // gguf row 1 = hf row 32 (i = 1, j = 0)
    permute_rows_gguf_to_hf(big, 576, 3, 9);
    EXPECT_EQ(big, orig);
}

TEST(Shapes, CheckAgainstNamesTheTensor) {
    const ModelShape s = small_shape();
    LoraAdapter ad;
    LoraModule m;
    m.layer = 1;
    m.role = WeightRole::kK;
    m.d_out = 4;
    m.d_in = 8;
    m.rank = 2;
    m.a.assign(16, 0.f);
    m.b.assign(8, 0.f);
    ad.modules.push_back(m);
    EXPECT_TRUE(check_against(ad, s).ok());
    ad.modules[0].d_out = 8;
    EXPECT_EQ(check_against(ad, s).message(), "blk.1.attn_k: adapter is 8x8 (out x in), base weight is 4x8");
    ad.modules[0].d_out = 4;
    ad.modules[0].layer = 5;
    EXPECT_EQ(check_against(ad, s).message(), "blk.5.attn_k: layer 5 out of range (the base model has 2 layers)");
    ad.modules[0].layer = 1;
    ad.modules[0].b.resize(6);
    EXPECT_EQ(check_against(ad, s).message(), "blk.1.attn_k: A/B sizes do not match rank 2");
}

TEST(Dense, ScaledProduct) {
    LoraModule m;
    m.d_out = 2;
    m.d_in = 2;
    m.rank = 1;
    m.scale = 2.f;
    m.a = {1, 2};
    m.b = {3, -1};
    EXPECT_EQ(dense_delta(m), (std::vector<float>{6, 12, -2, -4}));
}

TEST(LoraSpec, FileAndScale) {
    auto a = parse_lora_spec("dir/adapter.gguf:0.5");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->path, "dir/adapter.gguf");
    EXPECT_FLOAT_EQ(a->scale, 0.5f);
    auto b = parse_lora_spec("dir/adapter");
    EXPECT_EQ(b->path, "dir/adapter");
    EXPECT_FLOAT_EQ(b->scale, 1.f);
    auto c = parse_lora_spec("c:/x:y");  // a non-numeric suffix belongs to the path
    EXPECT_EQ(c->path, "c:/x:y");
    EXPECT_EQ(parse_lora_spec(":2").error().message(), "--lora: empty file name");
    EXPECT_EQ(load_adapter("/nonexistent/a.gguf", small_shape()).error().message(),
              "/nonexistent/a.gguf: cannot open: No such file or directory");
}

}  // namespace
}  // namespace strata::adapters

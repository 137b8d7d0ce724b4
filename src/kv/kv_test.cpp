// Registry, shape checks, K/V mixing and allocator accounting of the KV subsystem.
#include <gtest/gtest.h>

#include "kv/kv_cache.h"

namespace strata::kv {
namespace {

TEST(Registry, UnknownNameListsKnownOnes) {
    auto m = make_kv_method("q9");
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().message(),
              "unknown KV method \"q9\" (known: fp16, fp32, q8_0, q4_1, q4_0, kivi4, kivi2, kivi4_g32_r128, "
              "kivi2_g32_r128, hk2, varn2, kvarn_k4v4, kvarn_k4v2, kvarn_k3v3, kvarn_k2v2, turboquant4, turboquant3, "
              "turboquant4_b2, turboquant3_b2, tq_mse3, tq_prod3)");
    for (const std::string& n : kv_method_names()) {
        auto mm = make_kv_method(n);
        ASSERT_TRUE(mm) << n;
        EXPECT_EQ((*mm)->name(), n);
    }
}

TEST(Registry, HeadSizeErrors) {
    const CacheShape odd{1, 4, 2, 48, 64};
    auto a = KvCache::create(KvSpec{"q4_0", "q4_0"}, odd);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().message(), "kv q4_0: head_dim 48 is not a multiple of 32 (the format's block size)");
    auto b = KvCache::create(KvSpec{"kvarn_k4v2", "kvarn_k4v2"}, odd);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().message(), "kv kvarn_k4v2: head_dim 48 is not a power of two in 8..256 (Hadamard size / code packing)");
    EXPECT_TRUE(KvCache::create(KvSpec{"fp16", "fp16"}, odd));
    auto c = KvCache::create(KvSpec{"kvarn_k4v2", "q8_0"}, CacheShape{1, 4, 2, 64, 64});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().message(),
              "K and V formats differ (\"kvarn_k4v2\", \"q8_0\") but \"kvarn_k4v2\" stores K and V together; only "
              "per-token formats (fp32, fp16, q8_0, q4_1, q4_0) can be mixed");
    EXPECT_TRUE(KvCache::create(KvSpec{"q8_0", "q4_0"}, CacheShape{1, 4, 2, 64, 64}));
}

// Allocator bytes for SmolLM2's shape (30 layers, 3 KV heads, D = 64) at token counts that
// fill whole pages, against spec §3's per-token table plus the FP sink/tail reservation.
TEST(Accounting, BytesFromAllocatorMatchFormat) {
    const CacheShape s{30, 9, 3, 64, 8192};
    const int kv_dim = 3 * 64;
    std::vector<float> k(size_t(1024) * kv_dim, 0.5f), v(k.size(), -0.25f);
    struct Case {
        const char* name;
        double quant_bytes_per_token;  // spec §3, all 30 layers
        bool tiles;
    };
    for (const Case& c : {Case{"fp32", 46080, false}, Case{"fp16", 23040, false}, Case{"q8_0", 12240, false},
                          Case{"q4_1", 7200, false}, Case{"q4_0", 6480, false}, Case{"kivi2", 3420, true},
                          Case{"kvarn_k2v2", 3690, true}, Case{"kvarn_k4v2", 5130, true}, Case{"turboquant3", 4860, false},
                          Case{"tq_mse3", 4680, false}, Case{"tq_prod3", 5040, false}}) {
        SCOPED_TRACE(c.name);
        auto kv = KvCache::create(KvSpec{c.name, c.name}, s);
        ASSERT_TRUE(kv);
        for (int l = 0; l < 30; ++l) {
            ASSERT_TRUE((*kv)->layer(l).append(k.data(), v.data(), 1024).ok());
            ASSERT_TRUE((*kv)->layer(l).append(k.data(), v.data(), 128).ok());  // flushes the 7 full tiles
        }
        const double n = 1152;
        if (!c.tiles) {
            EXPECT_DOUBLE_EQ(double((*kv)->bytes()), c.quant_bytes_per_token * n);
        } else {
            // 7 tiles quantized, sink (128) + tail reserve: the FP16 buffers hold
            // max(sink + tile, sink + longest tail) tokens at 2 bytes * 2 tensors * 192 values.
            const double fp = (128.0 + 1024.0 - 128) * 30 * kv_dim * 4;
            EXPECT_DOUBLE_EQ(double((*kv)->bytes()), c.quant_bytes_per_token * 7 * 128 + fp);
        }
        EXPECT_EQ((*kv)->budget().used(), (*kv)->bytes());
    }
}

TEST(Accounting, BudgetExhaustionIsAnError) {
    auto kv = KvCache::create(KvSpec{"q8_0", "q8_0"}, CacheShape{1, 4, 2, 64, 1024}, 20000);
    ASSERT_TRUE(kv);
    std::vector<float> k(size_t(200) * 128, 1.f);
    Status st = (*kv)->layer(0).append(k.data(), k.data(), 200);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.message(), "KV cache budget exhausted: 17408 bytes in use, 17408 more requested, limit 20000");
}

}  // namespace
}  // namespace strata::kv

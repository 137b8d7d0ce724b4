// Sampler chain tests on small hand-checkable logit vectors: each stage's survivors and
// probabilities are computed by hand from its definition (see sampler.cpp's header).
#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace strata::sampling {
namespace {

std::vector<int32_t> ids(const Candidates& c) {
    std::vector<int32_t> v;
    for (const auto& x : c.data) v.push_back(x.id);
    return v;
}

Candidates make(std::vector<float> logits) {
    Candidates c;
    c.from_logits(logits);
    return c;
}

TEST(Sampler, GreedyPicksFirstMaximum) {
    auto g = make_greedy();
    Candidates c = make({0.5f, 2.0f, -1.0f, 2.0f});
    g->apply(c);
    EXPECT_EQ(c.data[size_t(c.selected)].id, 1);
}

TEST(Sampler, TopKKeepsKLargest) {
    Candidates c = make({0.1f, 3.0f, 2.0f, -5.0f, 2.5f});
    make_top_k(3)->apply(c);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 4, 2}));
    Candidates all = make({1.f, 2.f});
    make_top_k(0)->apply(all);  // 0 = off
    EXPECT_EQ(all.data.size(), 2u);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingP) {
    // logits ln(0.5), ln(0.3), ln(0.2): probabilities 0.5, 0.3, 0.2.
    Candidates c = make({std::log(0.5f), std::log(0.3f), std::log(0.2f)});
    make_top_p(0.7f)->apply(c);  // 0.5 < 0.7, 0.8 >= 0.7 -> two survive
    EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1}));
    Candidates d = make({std::log(0.5f), std::log(0.3f), std::log(0.2f)});
    make_top_p(0.5f)->apply(d);  // 0.5 >= 0.5 -> one
    EXPECT_EQ(ids(d), (std::vector<int32_t>{0}));
}

TEST(Sampler, MinPRelativeToMax) {
    // probabilities 0.6, 0.25, 0.1, 0.05; min_p 0.2 keeps p >= 0.12 -> first two.
    Candidates c = make({std::log(0.6f), std::log(0.25f), std::log(0.1f), std::log(0.05f)});
    make_min_p(0.2f)->apply(c);
    EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1}));
}

TEST(Sampler, TemperatureScalesLogits) {
    Candidates c = make({2.0f, -1.0f});
    make_temperature(0.5f)->apply(c);
    EXPECT_FLOAT_EQ(c.data[0].logit, 4.0f);
    EXPECT_FLOAT_EQ(c.data[1].logit, -2.0f);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveMultipliesNegative) {
    auto rp = make_repetition_penalty(2.0f, 2);
    rp->accept(0);
    rp->accept(1);
    rp->accept(2);  // window of 2: {1, 2}
    Candidates c = make({4.0f, 4.0f, -1.0f, 3.0f});
    rp->apply(c);
    EXPECT_FLOAT_EQ(c.data[0].logit, 4.0f);   // fell out of the window
    EXPECT_FLOAT_EQ(c.data[1].logit, 2.0f);
    EXPECT_FLOAT_EQ(c.data[2].logit, -2.0f);
    EXPECT_FLOAT_EQ(c.data[3].logit, 3.0f);
}

TEST(Sampler, DistFollowsSoftmaxFrequencies) {
    // p = 0.5, 0.3, 0.2: empirical frequencies over 20000 draws within 0.015.
    auto d = make_dist(123);
    std::map<int32_t, int> hist;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
        Candidates c = make({std::log(0.5f), std::log(0.3f), std::log(0.2f)});
        d->apply(c);
        hist[c.data[size_t(c.selected)].id]++;
    }
    EXPECT_NEAR(hist[0] / double(n), 0.5, 0.015);
    EXPECT_NEAR(hist[1] / double(n), 0.3, 0.015);
    EXPECT_NEAR(hist[2] / double(n), 0.2, 0.015);
}

TEST(Sampler, SeededChainIsReproducibleAndTempZeroIsGreedy) {
    std::vector<float> logits(100);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(float(i)) * 3.0f;
    SamplingParams p;
    p.temperature = 1.0f;
    p.seed = 7;
    auto a = make_chain(p), b = make_chain(p);
    std::vector<int32_t> sa, sb;
    for (int i = 0; i < 50; ++i) {
        sa.push_back(a->sample(logits));
        sb.push_back(b->sample(logits));
    }
    EXPECT_EQ(sa, sb);
    EXPECT_GT(std::set<int32_t>(sa.begin(), sa.end()).size(), 1u);  // actually random
    p.temperature = 0;
    auto g = make_chain(p);
    const int32_t best = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(g->sample(logits), best);
}

TEST(Sampler, ValidateNamesTheFlag) {
    SamplingParams p;
    p.top_p = 0;
    EXPECT_EQ(p.validate().message(), "--top-p: must be in (0, 1] (got 0)");
    p = {};
    p.min_p = 2;
    EXPECT_EQ(p.validate().message(), "--min-p: must be in [0, 1] (got 2)");
    p = {};
    p.repeat_penalty = 0;
    EXPECT_EQ(p.validate().message(), "--repeat-penalty: must be > 0 (got 0)");
    p = {};
    p.top_k = -1;
    EXPECT_EQ(p.validate().message(), "--top-k: must be >= 0 (got -1)");
    EXPECT_TRUE(SamplingParams{}.validate().ok());
}

}  // namespace
}  // namespace strata::sampling

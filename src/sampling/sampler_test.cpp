// Sampler chain tests on small hand-checkable logit vectors: each stage's survivors and
// probabilities are computed by hand from its definition (see sampler.cpp's header).
#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

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

TEST(Sampler, LogitBiasAddsToListedIds) {
    auto lb = make_logit_bias({{1, 2.5f}, {3, -100.f}, {7, 5.f}});  // 7 is not in the list: skipped
    Candidates c = make({1.0f, 0.5f, -2.0f, 4.0f});
    lb->apply(c);
    EXPECT_FLOAT_EQ(c.data[0].logit, 1.0f);
    EXPECT_FLOAT_EQ(c.data[1].logit, 3.0f);
    EXPECT_FLOAT_EQ(c.data[2].logit, -2.0f);
    EXPECT_FLOAT_EQ(c.data[3].logit, -96.0f);
    // Also when the list is no longer in id order (the by-id pass).
    Candidates d = make({1.0f, 0.5f, -2.0f, 4.0f});
    d.sort_desc();  // ids 3, 0, 1, 2
    lb->apply(d);
    EXPECT_FALSE(d.sorted);
    std::map<int32_t, float> by_id;
    for (const auto& x : d.data) by_id[x.id] = x.logit;
    EXPECT_EQ(by_id, (std::map<int32_t, float>{{0, 1.0f}, {1, 3.0f}, {2, -2.0f}, {3, -96.0f}}));
}

TEST(Sampler, PresenceFrequencyCountsOnlyGeneratedTokens) {
    auto pf = make_presence_frequency_penalty(0.5f, 0.25f);
    for (int32_t t : {0, 0, 1, 2, 2, 2}) pf->accept(t);  // prompt: never counted
    Candidates p0 = make({1.0f, 1.0f, 1.0f, 1.0f, 1.0f});
    pf->apply(p0);
    for (const auto& x : p0.data) EXPECT_EQ(x.logit, 1.0f) << "prompt token " << x.id << " was penalized";
    pf->begin_generation();
    for (int32_t t : {1, 3, 3, 3, 1, 3}) pf->accept(t);  // generated: c[1] = 2, c[3] = 4
    Candidates c = make({1.0f, 2.0f, -1.0f, 0.5f, 3.0f});
    pf->apply(c);
    EXPECT_EQ(c.data[0].logit, 1.0f);                      // prompt only
    EXPECT_EQ(c.data[1].logit, 2.0f - (2 * 0.25f + 0.5f));  // 1.0
    EXPECT_EQ(c.data[2].logit, -1.0f);                     // prompt only
    EXPECT_EQ(c.data[3].logit, 0.5f - (4 * 0.25f + 0.5f));  // -1.0
    EXPECT_EQ(c.data[4].logit, 3.0f);                      // never seen
    // A new reply (begin_generation again) starts from zero counts; so does reset().
    pf->begin_generation();
    pf->accept(4);
    Candidates d = make({1.0f, 2.0f, -1.0f, 0.5f, 3.0f});
    pf->apply(d);
    EXPECT_EQ(ids(d), (std::vector<int32_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(d.data[1].logit, 2.0f);
    EXPECT_EQ(d.data[3].logit, 0.5f);
    EXPECT_EQ(d.data[4].logit, 3.0f - 0.75f);
    pf->reset();
    pf->accept(4);  // prompt of the next run
    Candidates e = make({1.0f, 2.0f, -1.0f, 0.5f, 3.0f});
    pf->apply(e);
    EXPECT_EQ(e.data[4].logit, 3.0f);
}

TEST(Sampler, NegativePenaltiesRaiseLogits) {
    auto pf = make_presence_frequency_penalty(-1.0f, -0.5f);
    pf->begin_generation();
    pf->accept(0);
    pf->accept(0);
    Candidates c = make({0.0f, 0.0f});
    pf->apply(c);
    EXPECT_EQ(c.data[0].logit, 2.0f);  // 0 - (2 * -0.5 + -1)
    EXPECT_EQ(c.data[1].logit, 0.0f);
}

TEST(Sampler, ChainBeginGenerationReachesThePenaltyStage) {
    // Greedy chain with only a presence penalty: the prompt's token 2 keeps its lead, the
    // generated token 2 loses it (3.0 - 1.5 < 2.0).
    SamplingParams p;
    p.temperature = 0;
    p.presence_penalty = 1.5f;
    auto c = make_chain(p);
    const std::vector<float> logits = {0.0f, 2.0f, 3.0f};
    c->accept(2);
    c->accept(2);
    c->begin_generation();
    EXPECT_EQ(c->sample(logits), 2);
    c->accept(2);
    EXPECT_EQ(c->sample(logits), 1);
}

TEST(Sampler, MakeChainOrdersAndSkipsDefaultStages) {
    auto names = [](const Chain& c) {
        std::vector<std::string> v;
        for (size_t i = 0; i < c.size(); ++i) v.push_back(c.stage(i).name());
        return v;
    };
    SamplingParams p;
    p.temperature = 0;
    EXPECT_EQ(names(*make_chain(p)), (std::vector<std::string>{"greedy"}));
    p.logit_bias = {{3, 1.f}};
    p.repeat_penalty = 1.1f;
    p.frequency_penalty = 0.1f;
    EXPECT_EQ(names(*make_chain(p)),
              (std::vector<std::string>{"logit_bias", "repetition_penalty", "presence_frequency_penalty", "greedy"}));
    p.temperature = 0.7f;
    p.seed = 1;
    p.frequency_penalty = 0;
    p.presence_penalty = -0.1f;
    EXPECT_EQ(names(*make_chain(p)),
              (std::vector<std::string>{"logit_bias", "repetition_penalty", "presence_frequency_penalty", "top_k",
                                        "top_p", "min_p", "temperature", "dist"}));
}

TEST(Sampler, PlusHundredBiasForcesGreedyPick) {
    std::vector<float> logits(1000);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(float(i)) * 20.0f;  // spread of 40
    SamplingParams p;
    p.temperature = 0;
    const int32_t plain = make_chain(p)->sample(logits);
    const int32_t want = plain == 5 ? 6 : 5;
    p.logit_bias = {{want, 100.f}};
    EXPECT_EQ(make_chain(p)->sample(logits), want);
    // Sampled too: with the default filters the biased token is the only survivor.
    p.temperature = 0.8f;
    p.seed = 3;
    auto c = make_chain(p);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(c->sample(logits), want);
}

TEST(Sampler, MinusHundredBiasNeverPicksTheToken) {
    // A flat distribution over a large vocabulary with no filters, so the banned token
    // stays in the candidate list (last, with probability e^-100 / V) on every draw.
    std::vector<float> logits(8192, 0.0f);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(i % 7) * 1e-3f;
    const int32_t banned = 6;  // among the largest logits before the bias
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 11;
    p.logit_bias = {{banned, -100.f}};
    auto c = make_chain(p);
    std::set<int32_t> seen;
    for (int i = 0; i < 2000; ++i) {
        const int32_t t = c->sample(logits);
        ASSERT_NE(t, banned) << "draw " << i;
        seen.insert(t);
    }
    EXPECT_GT(seen.size(), 1500u);  // the others really are sampled (~1775 distinct expected)
    // Two-token case: the banned token holds (nearly) all the mass without the bias.
    SamplingParams q = p;
    q.logit_bias = {{0, -100.f}};
    auto d = make_chain(q);
    const std::vector<float> two = {30.0f, 0.0f};
    for (int i = 0; i < 5000; ++i) ASSERT_EQ(d->sample(two), 1);
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
    p = {};
    p.presence_penalty = 2.5f;
    EXPECT_EQ(p.validate().message(), "--presence-penalty: must be in [-2, 2] (got 2.5)");
    p.presence_penalty = std::nanf("");
    EXPECT_EQ(p.validate().message(), "--presence-penalty: must be in [-2, 2] (got nan)");
    p = {};
    p.frequency_penalty = -2.5f;
    EXPECT_EQ(p.validate().message(), "--frequency-penalty: must be in [-2, 2] (got -2.5)");
    p = {};
    p.logit_bias = {{5, 100.f}, {9, -101.f}};
    EXPECT_EQ(p.validate().message(), "--logit-bias: token 9: bias must be in [-100, 100] (got -101)");
    p.logit_bias = {{5, INFINITY}};
    EXPECT_EQ(p.validate().message(), "--logit-bias: token 5: bias must be in [-100, 100] (got inf)");
    p.logit_bias = {{-1, 1.f}};
    EXPECT_EQ(p.validate().message(), "--logit-bias: token id must be >= 0 (got -1)");
    p.logit_bias = {{4, 1.f}, {4, 2.f}};
    EXPECT_EQ(p.validate().message(), "--logit-bias: token 4 is listed twice");
    p = {};
    p.presence_penalty = -2.f;
    p.frequency_penalty = 2.f;
    p.logit_bias = {{0, -100.f}, {1, 100.f}};
    EXPECT_TRUE(p.validate().ok());
    EXPECT_TRUE(SamplingParams{}.validate().ok());
}

}  // namespace
}  // namespace strata::sampling

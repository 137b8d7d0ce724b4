// Sampling as a chain, after llama.cpp: each sampler narrows or rescales a candidate
// list; accept(token) updates state (e.g. the repetition-penalty window); a chain is
// itself a sampler. The final stage picks a token: greedy (argmax) or dist (seeded RNG).
//
// Prompt vs generated tokens: the caller accept()s every prompt token (the repetition
// penalty, after llama.cpp, looks back over prompt and generated tokens alike), then calls
// begin_generation() once, right before the first sample() of a reply, then accept()s each
// sampled token. Stages with OpenAI semantics (presence/frequency penalties) count only the
// tokens accepted after the latest begin_generation(): the reply generated so far.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace strata::sampling {

struct Candidate {
    int32_t id;
    float logit;
    float p;  // filled by softmax-based stages
};

struct Candidates {
    std::vector<Candidate> data;
    bool sorted = false;   // by logit, descending
    int64_t selected = -1; // index into data after a picking stage
    void from_logits(std::span<const float> logits);
    void sort_desc();
    void softmax();        // sorts, sets p
};

class Sampler {
public:
    virtual ~Sampler() = default;
    virtual const char* name() const = 0;
    virtual void apply(Candidates& c) = 0;
    virtual void accept(int32_t /*token*/) {}
    // The tokens accepted from now on are generated ones (see the top of this file).
    virtual void begin_generation() {}
    virtual void reset() {}
};

// One declaration per option: name, default, help (CLI flags and server JSON derive from it).
struct SamplingParams {
    float temperature = 0.8f;      // --temp: 0 = greedy
    int32_t top_k = 40;            // --top-k: 0 = off
    float top_p = 0.95f;           // --top-p: 1 = off
    float min_p = 0.05f;           // --min-p: 0 = off
    float repeat_penalty = 1.0f;   // --repeat-penalty: 1 = off
    int32_t repeat_last_n = 64;    // --repeat-last-n: window for the penalty
    uint64_t seed = 0xFFFFFFFFu;   // --seed: 0xFFFFFFFF = random
    // OpenAI penalties, each in [-2, 2], 0 = off: for every token id t generated c[t] > 0
    // times so far in this reply (prompt tokens never count; see begin_generation()),
    // logit[t] -= c[t] * frequency_penalty + presence_penalty.
    float presence_penalty = 0.f;   // --presence-penalty (JSON presence_penalty)
    float frequency_penalty = 0.f;  // --frequency-penalty (JSON frequency_penalty)
    // OpenAI logit_bias: {token id, bias in [-100, 100]} added to that token's logit before
    // any other stage (-100 effectively bans the token, +100 effectively forces it). Ids are
    // unique and >= 0; the server checks them against the vocabulary, the stage skips ids
    // outside the candidate list.
    std::vector<std::pair<int32_t, float>> logit_bias;  // --logit-bias (JSON logit_bias)
    Status validate() const;       // errors name the flag
};

std::unique_ptr<Sampler> make_greedy();
std::unique_ptr<Sampler> make_dist(uint64_t seed);
std::unique_ptr<Sampler> make_temperature(float t);
std::unique_ptr<Sampler> make_top_k(int32_t k);
std::unique_ptr<Sampler> make_top_p(float p, size_t min_keep = 1);
std::unique_ptr<Sampler> make_min_p(float p, size_t min_keep = 1);
std::unique_ptr<Sampler> make_repetition_penalty(float penalty, int32_t last_n);
// logit[t] -= c[t] * frequency + (c[t] > 0) * presence, c[t] = times t was accepted since
// the latest begin_generation() (before the first call nothing counts; reset() clears).
std::unique_ptr<Sampler> make_presence_frequency_penalty(float presence, float frequency);
// logit[id] += bias for each entry (entries with the same id add up).
std::unique_ptr<Sampler> make_logit_bias(std::vector<std::pair<int32_t, float>> bias);

class Chain final : public Sampler {
public:
    const char* name() const override { return "chain"; }
    void add(std::unique_ptr<Sampler> s) { stages_.push_back(std::move(s)); }
    // Puts a stage before all others (a constraint that must see every candidate).
    void add_front(std::unique_ptr<Sampler> s) { stages_.insert(stages_.begin(), std::move(s)); }
    void apply(Candidates& c) override;
    void accept(int32_t token) override;
    void begin_generation() override;
    void reset() override;
    size_t size() const { return stages_.size(); }
    const Sampler& stage(size_t i) const { return *stages_[i]; }
    // Builds candidates from logits, runs the chain, returns the selected token.
    int32_t sample(std::span<const float> logits);

private:
    std::vector<std::unique_ptr<Sampler>> stages_;
    Candidates cands_;
};

// The standard chain: logit bias -> repetition penalty -> presence/frequency penalties
// -> top-k -> top-p -> min-p -> temperature -> dist, or the same three first stages ->
// greedy when temperature <= 0. The first three are added only when not at their defaults.
std::unique_ptr<Chain> make_chain(const SamplingParams& p);

}  // namespace strata::sampling

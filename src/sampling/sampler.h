// Sampling as a chain, after llama.cpp: each sampler narrows or rescales a candidate
// list; accept(token) updates state (e.g. the repetition-penalty window); a chain is
// itself a sampler. The final stage picks a token: greedy (argmax) or dist (seeded RNG).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
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
    Status validate() const;       // errors name the flag
};

std::unique_ptr<Sampler> make_greedy();
std::unique_ptr<Sampler> make_dist(uint64_t seed);
std::unique_ptr<Sampler> make_temperature(float t);
std::unique_ptr<Sampler> make_top_k(int32_t k);
std::unique_ptr<Sampler> make_top_p(float p, size_t min_keep = 1);
std::unique_ptr<Sampler> make_min_p(float p, size_t min_keep = 1);
std::unique_ptr<Sampler> make_repetition_penalty(float penalty, int32_t last_n);

class Chain final : public Sampler {
public:
    const char* name() const override { return "chain"; }
    void add(std::unique_ptr<Sampler> s) { stages_.push_back(std::move(s)); }
    void apply(Candidates& c) override;
    void accept(int32_t token) override;
    void reset() override;
    // Builds candidates from logits, runs the chain, returns the selected token.
    int32_t sample(std::span<const float> logits);

private:
    std::vector<std::unique_ptr<Sampler>> stages_;
    Candidates cands_;
};

// The standard chain: penalties -> top-k -> top-p -> min-p -> temperature -> dist,
// or penalties -> greedy when temperature <= 0.
std::unique_ptr<Chain> make_chain(const SamplingParams& p);

}  // namespace strata::sampling

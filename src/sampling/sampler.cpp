// The built-in samplers and the chain. Semantics follow llama.cpp's llama-sampling.cpp:
// top-p keeps the smallest prefix whose probability mass reaches p; min-p keeps tokens with
// p >= min_p * p_max; the repetition penalty divides positive logits and multiplies
// negative ones for tokens seen in the last N accepted tokens. The OpenAI options follow
// OpenAI's definitions (see sampler.h): logit bias is added first, the presence/frequency
// penalties count only the tokens generated in this reply.
#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <unordered_map>
#include <unordered_set>

namespace strata::sampling {

void Candidates::from_logits(std::span<const float> logits) {
    data.resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) data[i] = {int32_t(i), logits[i], 0.f};
    sorted = false;
    selected = -1;
}

void Candidates::sort_desc() {
    if (sorted) return;
    std::stable_sort(data.begin(), data.end(), [](const Candidate& a, const Candidate& b) { return a.logit > b.logit; });
    sorted = true;
}

void Candidates::softmax() {
    sort_desc();
    if (data.empty()) return;
    const float mx = data[0].logit;
    double sum = 0;
    for (auto& c : data) {
        c.p = std::exp(c.logit - mx);
        sum += c.p;
    }
    for (auto& c : data) c.p = float(c.p / sum);
}

Status SamplingParams::validate() const {
    if (!(temperature >= 0) || !std::isfinite(temperature))
        return invalid_input("--temp: must be >= 0 (got {})", temperature);
    if (top_k < 0) return invalid_input("--top-k: must be >= 0 (got {})", top_k);
    if (!(top_p > 0 && top_p <= 1)) return invalid_input("--top-p: must be in (0, 1] (got {})", top_p);
    if (!(min_p >= 0 && min_p <= 1)) return invalid_input("--min-p: must be in [0, 1] (got {})", min_p);
    if (!(repeat_penalty > 0) || !std::isfinite(repeat_penalty))
        return invalid_input("--repeat-penalty: must be > 0 (got {})", repeat_penalty);
    if (repeat_last_n < 0) return invalid_input("--repeat-last-n: must be >= 0 (got {})", repeat_last_n);
    if (!(presence_penalty >= -2 && presence_penalty <= 2))
        return invalid_input("--presence-penalty: must be in [-2, 2] (got {})", presence_penalty);
    if (!(frequency_penalty >= -2 && frequency_penalty <= 2))
        return invalid_input("--frequency-penalty: must be in [-2, 2] (got {})", frequency_penalty);
    std::unordered_set<int32_t> ids;
    for (const auto& [id, bias] : logit_bias) {
        if (id < 0) return invalid_input("--logit-bias: token id must be >= 0 (got {})", id);
        if (!(bias >= -100 && bias <= 100))
            return invalid_input("--logit-bias: token {}: bias must be in [-100, 100] (got {})", id, bias);
        if (!ids.insert(id).second) return invalid_input("--logit-bias: token {} is listed twice", id);
    }
    return ok_status();
}

namespace {

// Calls f(candidate, value) for each candidate whose id is a key of m (ids are unique in a
// candidate list). While the list is still in from_logits() order (id == index) this is a
// direct lookup per key; otherwise one pass over the candidates. Keys not in the list are
// skipped.
template <class Map, class F>
void for_listed(Candidates& c, const Map& m, F&& f) {
    bool direct = true;
    for (const auto& kv : m)
        if (kv.first < 0 || size_t(kv.first) >= c.data.size() || c.data[size_t(kv.first)].id != kv.first) {
            direct = false;
            break;
        }
    if (direct) {
        for (const auto& kv : m) f(c.data[size_t(kv.first)], kv.second);
        return;
    }
    for (auto& x : c.data)
        if (auto it = m.find(x.id); it != m.end()) f(x, it->second);
}

class Greedy final : public Sampler {
public:
    const char* name() const override { return "greedy"; }
    void apply(Candidates& c) override {
        if (c.data.empty()) return;
        // First maximum wins (lowest id among ties when unsorted).
        size_t best = 0;
        for (size_t i = 1; i < c.data.size(); ++i)
            if (c.data[i].logit > c.data[best].logit) best = i;
        c.selected = int64_t(best);
    }
};

class Dist final : public Sampler {
public:
    explicit Dist(uint64_t seed) : seed_(seed), rng_(seed) {}
    const char* name() const override { return "dist"; }
    void apply(Candidates& c) override {
        if (c.data.empty()) return;
        c.softmax();
        // The draw is scaled by the summed float probabilities (1 up to rounding), so it
        // never falls past the end and onto the least likely candidate (e.g. one banned
        // with a -100 logit bias) when the sum comes out slightly below 1.
        double total = 0;
        size_t last = 0;  // the last candidate with mass
        for (size_t i = 0; i < c.data.size(); ++i) {
            total += c.data[i].p;
            if (c.data[i].p > 0) last = i;
        }
        std::uniform_real_distribution<double> u(0.0, 1.0);
        const double r = u(rng_) * total;
        double cum = 0;
        for (size_t i = 0; i < c.data.size(); ++i) {
            cum += c.data[i].p;
            if (r < cum) {
                c.selected = int64_t(i);
                return;
            }
        }
        c.selected = int64_t(last);
    }
    void reset() override { rng_.seed(seed_); }

private:
    uint64_t seed_;
    std::mt19937_64 rng_;
};

class Temperature final : public Sampler {
public:
    explicit Temperature(float t) : t_(t) {}
    const char* name() const override { return "temperature"; }
    void apply(Candidates& c) override {
        if (t_ <= 0) {  // keep only the max
            c.sort_desc();
            c.data.resize(std::min<size_t>(1, c.data.size()));
            return;
        }
        for (auto& x : c.data) x.logit /= t_;
    }

private:
    float t_;
};

class TopK final : public Sampler {
public:
    explicit TopK(int32_t k) : k_(k) {}
    const char* name() const override { return "top_k"; }
    void apply(Candidates& c) override {
        if (k_ <= 0 || size_t(k_) >= c.data.size()) return;
        if (!c.sorted) {
            std::partial_sort(c.data.begin(), c.data.begin() + k_, c.data.end(),
                              [](const Candidate& a, const Candidate& b) {
                                  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
                              });
            c.sorted = true;
        }
        c.data.resize(size_t(k_));
    }

private:
    int32_t k_;
};

class TopP final : public Sampler {
public:
    TopP(float p, size_t min_keep) : p_(p), min_keep_(min_keep) {}
    const char* name() const override { return "top_p"; }
    void apply(Candidates& c) override {
        if (p_ >= 1.0f || c.data.empty()) return;
        c.softmax();
        double cum = 0;
        size_t keep = c.data.size();
        for (size_t i = 0; i < c.data.size(); ++i) {
            cum += c.data[i].p;
            if (cum >= p_ && i + 1 >= min_keep_) {
                keep = i + 1;
                break;
            }
        }
        c.data.resize(keep);
    }

private:
    float p_;
    size_t min_keep_;
};

class MinP final : public Sampler {
public:
    MinP(float p, size_t min_keep) : p_(p), min_keep_(min_keep) {}
    const char* name() const override { return "min_p"; }
    void apply(Candidates& c) override {
        if (p_ <= 0 || c.data.empty()) return;
        c.sort_desc();
        // p_i >= p * p_max  <=>  logit_i >= logit_max + log(p)
        const float thr = c.data[0].logit + std::log(p_);
        size_t keep = 0;
        while (keep < c.data.size() && c.data[keep].logit >= thr) ++keep;
        c.data.resize(std::max(keep, std::min(min_keep_, c.data.size())));
    }

private:
    float p_;
    size_t min_keep_;
};

class RepetitionPenalty final : public Sampler {
public:
    RepetitionPenalty(float penalty, int32_t last_n) : penalty_(penalty), last_n_(last_n) {}
    const char* name() const override { return "repetition_penalty"; }
    void apply(Candidates& c) override {
        if (penalty_ == 1.0f || last_n_ == 0 || window_.empty()) return;
        std::unordered_set<int32_t> seen(window_.begin(), window_.end());
        for (auto& x : c.data)
            if (seen.count(x.id)) x.logit = x.logit > 0 ? x.logit / penalty_ : x.logit * penalty_;
        c.sorted = false;
    }
    void accept(int32_t t) override {
        if (last_n_ == 0) return;
        window_.push_back(t);
        while (window_.size() > size_t(last_n_)) window_.pop_front();
    }
    void reset() override { window_.clear(); }

private:
    float penalty_;
    int32_t last_n_;
    std::deque<int32_t> window_;
};

// OpenAI presence/frequency penalties over the tokens accepted since begin_generation().
class PresenceFrequencyPenalty final : public Sampler {
public:
    PresenceFrequencyPenalty(float presence, float frequency) : presence_(presence), frequency_(frequency) {}
    const char* name() const override { return "presence_frequency_penalty"; }
    void apply(Candidates& c) override {
        if (counts_.empty() || (presence_ == 0 && frequency_ == 0)) return;
        for_listed(c, counts_, [&](Candidate& x, int32_t n) { x.logit -= float(n) * frequency_ + presence_; });
        c.sorted = false;
    }
    void accept(int32_t t) override {
        if (generating_) ++counts_[t];
    }
    void begin_generation() override {
        counts_.clear();
        generating_ = true;
    }
    void reset() override {
        counts_.clear();
        generating_ = false;
    }

private:
    float presence_, frequency_;
    bool generating_ = false;  // before begin_generation(), accepted tokens are prompt
    std::unordered_map<int32_t, int32_t> counts_;
};

class LogitBias final : public Sampler {
public:
    explicit LogitBias(const std::vector<std::pair<int32_t, float>>& bias) {
        for (const auto& [id, b] : bias)
            if (id >= 0) bias_[id] += b;
    }
    const char* name() const override { return "logit_bias"; }
    void apply(Candidates& c) override {
        if (bias_.empty()) return;
        for_listed(c, bias_, [](Candidate& x, float b) { x.logit += b; });
        c.sorted = false;
    }

private:
    std::unordered_map<int32_t, float> bias_;
};

}  // namespace

std::unique_ptr<Sampler> make_greedy() { return std::make_unique<Greedy>(); }
std::unique_ptr<Sampler> make_dist(uint64_t seed) { return std::make_unique<Dist>(seed); }
std::unique_ptr<Sampler> make_temperature(float t) { return std::make_unique<Temperature>(t); }
std::unique_ptr<Sampler> make_top_k(int32_t k) { return std::make_unique<TopK>(k); }
std::unique_ptr<Sampler> make_top_p(float p, size_t mk) { return std::make_unique<TopP>(p, mk); }
std::unique_ptr<Sampler> make_min_p(float p, size_t mk) { return std::make_unique<MinP>(p, mk); }
std::unique_ptr<Sampler> make_repetition_penalty(float penalty, int32_t n) {
    return std::make_unique<RepetitionPenalty>(penalty, n);
}
std::unique_ptr<Sampler> make_presence_frequency_penalty(float presence, float frequency) {
    return std::make_unique<PresenceFrequencyPenalty>(presence, frequency);
}
std::unique_ptr<Sampler> make_logit_bias(std::vector<std::pair<int32_t, float>> bias) {
    return std::make_unique<LogitBias>(bias);
}

void Chain::apply(Candidates& c) {
    for (auto& s : stages_) s->apply(c);
}
void Chain::accept(int32_t token) {
    for (auto& s : stages_) s->accept(token);
}
void Chain::begin_generation() {
    for (auto& s : stages_) s->begin_generation();
}
void Chain::reset() {
    for (auto& s : stages_) s->reset();
}

int32_t Chain::sample(std::span<const float> logits) {
    cands_.from_logits(logits);
    apply(cands_);
    STRATA_ASSERT(cands_.selected >= 0 && size_t(cands_.selected) < cands_.data.size());
    return cands_.data[size_t(cands_.selected)].id;
}

std::unique_ptr<Chain> make_chain(const SamplingParams& p) {
    auto c = std::make_unique<Chain>();
    if (!p.logit_bias.empty()) c->add(make_logit_bias(p.logit_bias));
    if (p.repeat_penalty != 1.0f) c->add(make_repetition_penalty(p.repeat_penalty, p.repeat_last_n));
    if (p.presence_penalty != 0 || p.frequency_penalty != 0)
        c->add(make_presence_frequency_penalty(p.presence_penalty, p.frequency_penalty));
    if (p.temperature <= 0) {
        c->add(make_greedy());
        return c;
    }
    uint64_t seed = p.seed;
    if (seed == 0xFFFFFFFFu) seed = std::random_device{}();
    c->add(make_top_k(p.top_k));
    c->add(make_top_p(p.top_p));
    c->add(make_min_p(p.min_p));
    c->add(make_temperature(p.temperature));
    c->add(make_dist(seed));
    return c;
}

}  // namespace strata::sampling

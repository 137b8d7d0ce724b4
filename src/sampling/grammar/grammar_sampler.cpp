// TokenVocab's trie and the GrammarSampler stage (see grammar_sampler.h for the contract).
#include "sampling/grammar/grammar_sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace strata::sampling {

std::shared_ptr<const TokenVocab> make_token_vocab(std::vector<std::string> pieces, std::vector<int32_t> eog_ids) {
    auto v = std::make_shared<TokenVocab>();
    const size_t n = pieces.size();
    v->pieces_ = std::move(pieces);
    v->eog_.assign(n, 0);
    for (int32_t id : eog_ids) {
        if (id < 0 || size_t(id) >= n || v->eog_[size_t(id)]) continue;
        v->eog_[size_t(id)] = 1;
        v->eog_ids_.push_back(id);
    }
    v->same_piece_next_.assign(n, -1);

    // Insert the pieces in byte order: each one adds the nodes past its common prefix with
    // the previous piece, which yields the trie in depth-first order.
    std::vector<int32_t> order;
    for (size_t id = 0; id < n; ++id)
        if (!v->pieces_[id].empty() && v->pieces_[id].size() < UINT16_MAX && !v->eog_[id])
            order.push_back(int32_t(id));
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        const int c = v->pieces_[size_t(a)].compare(v->pieces_[size_t(b)]);
        return c != 0 ? c < 0 : a < b;
    });
    auto& trie = v->trie_;
    trie.push_back({0, -1, 0, 0});
    std::vector<uint32_t> at_depth{0};  // the node on the current path at each depth
    const std::string* prev = nullptr;
    for (int32_t id : order) {
        const std::string& p = v->pieces_[size_t(id)];
        size_t lcp = 0;
        if (prev) {
            const size_t lim = std::min(prev->size(), p.size());
            while (lcp < lim && (*prev)[lcp] == p[lcp]) ++lcp;
        }
        at_depth.resize(lcp + 1);
        for (size_t d = lcp + 1; d <= p.size(); ++d) {
            at_depth.push_back(uint32_t(trie.size()));
            trie.push_back({0, -1, uint16_t(d), uint8_t(p[d - 1])});
        }
        TokenVocab::Node& end = trie[at_depth.back()];
        if (end.token < 0) {
            end.token = id;
        } else {  // same bytes as an earlier token: chain it
            int32_t t = end.token;
            while (v->same_piece_next_[size_t(t)] >= 0) t = v->same_piece_next_[size_t(t)];
            v->same_piece_next_[size_t(t)] = id;
        }
        v->max_depth_ = std::max(v->max_depth_, p.size());
        prev = &p;
    }
    // skip: the next node at the same or a smaller depth.
    std::vector<uint32_t> open;
    for (uint32_t i = 0; i < trie.size(); ++i) {
        while (!open.empty() && trie[open.back()].depth >= trie[i].depth) {
            trie[open.back()].skip = i;
            open.pop_back();
        }
        open.push_back(i);
    }
    for (uint32_t i : open) trie[i].skip = uint32_t(trie.size());
    return v;
}

GrammarSampler::GrammarSampler(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocab> vocab)
    : vocab_(std::move(vocab)), matcher_(std::move(grammar)) {
    state_ = matcher_.initial();
    walk_.resize(vocab_->max_depth() + 1);
}

void GrammarSampler::reset() { state_ = matcher_.initial(); }

bool GrammarSampler::is_complete() const {
    return state_ != GrammarMatcher::kDead && matcher_.accepting(state_);
}

void GrammarSampler::set_mask_cache_size(size_t n) {
    cache_size_ = n;
    cache_.clear();
}

void GrammarSampler::fill_mask(GrammarMatcher::State s, CachedMask& out) {
    const size_t words = (size_t(vocab_->n_vocab()) + 63) / 64;
    out.state = s;
    out.bits.assign(words, 0);
    out.any = false;
    if (s == GrammarMatcher::kDead) return;
    const std::vector<TokenVocab::Node>& trie = vocab_->trie();
    uint64_t* bits = out.bits.data();
    bool any = false;
    walk_[0] = s;
    const size_t n = trie.size();
    for (size_t i = 1; i < n;) {
        const TokenVocab::Node& node = trie[i];
        const GrammarMatcher::State t = matcher_.step(walk_[node.depth - 1u], node.byte);
        if (t == GrammarMatcher::kDead) {
            i = node.skip;
            continue;
        }
        walk_[node.depth] = t;
        for (int32_t tok = node.token; tok >= 0; tok = vocab_->same_piece_next(tok)) {
            bits[size_t(tok) >> 6] |= uint64_t(1) << (tok & 63);
            any = true;
        }
        ++i;
    }
    out.any = any;
}

const GrammarSampler::CachedMask& GrammarSampler::mask_for(GrammarMatcher::State s) {
    ++clock_;
    if (cache_size_ == 0) {
        fill_mask(s, scratch_);
        return scratch_;
    }
    for (CachedMask& m : cache_) {
        if (m.state == s) {
            m.last_use = clock_;
            return m;
        }
    }
    CachedMask* slot;
    if (cache_.size() < cache_size_) {
        slot = &cache_.emplace_back();
    } else {
        slot = &*std::min_element(cache_.begin(), cache_.end(),
                                  [](const CachedMask& a, const CachedMask& b) { return a.last_use < b.last_use; });
    }
    fill_mask(s, *slot);
    slot->last_use = clock_;
    return *slot;
}

void GrammarSampler::apply(Candidates& c) {
    const CachedMask& m = mask_for(state_);
    const bool eog_ok = is_complete() || !m.any;
    if (!m.any && vocab_->eog_ids().empty()) return;  // nothing to offer: leave c as is
    const int32_t n = vocab_->n_vocab();
    for (Candidate& cand : c.data) {
        const int32_t id = cand.id;
        bool ok = false;
        if (id >= 0 && id < n) {
            ok = (m.bits[size_t(id) >> 6] >> (id & 63)) & 1u;
            if (!ok && eog_ok) ok = vocab_->is_eog(id);
        }
        if (!ok) cand.logit = -INFINITY;
    }
    c.sorted = false;
}

void GrammarSampler::accept(int32_t token) {
    if (state_ == GrammarMatcher::kDead) return;
    if (vocab_->is_eog(token)) {
        if (!matcher_.accepting(state_)) state_ = GrammarMatcher::kDead;
        return;
    }
    if (token < 0 || token >= vocab_->n_vocab() || vocab_->piece(token).empty()) {
        state_ = GrammarMatcher::kDead;
        return;
    }
    state_ = matcher_.step(state_, vocab_->piece(token));
    if (matcher_.over_budget()) {
        state_ = matcher_.compact(state_);
        cache_.clear();
    }
}

std::unique_ptr<GrammarSampler> make_grammar_sampler(std::shared_ptr<const Grammar> grammar,
                                                     std::shared_ptr<const TokenVocab> vocab) {
    return std::make_unique<GrammarSampler>(std::move(grammar), std::move(vocab));
}

}  // namespace strata::sampling

// Grammar-constrained sampling at the token level.
//
// TokenVocab holds the bytes of every token as a byte trie laid out in depth-first order
// (built once per tokenizer and shared by all requests). GrammarSampler is the first stage of
// a sampler chain: apply() walks the trie from the grammar's current state
// (grammar_matcher.h), skipping a whole subtree as soon as its prefix is impossible, and sets
// the logit of every token the grammar cannot take next to -INFINITY; accept() advances the
// state by the chosen token's bytes. Masks are cached per grammar state (the inside of a
// JSON string, for example, is one state however long the string gets).
//
// End of generation: EOG ids are allowed only when the text so far is a complete sentence of
// the grammar. If no token at all can continue (the grammar wants bytes that no token
// produces, or a token outside the grammar was accepted), apply() allows the EOG ids instead
// of masking everything, so sampling never fails; with no EOG ids it then leaves the
// candidates untouched. Control tokens (empty pieces) are never allowed.
//
// Prompt tokens: a chain accept()s the prompt, then calls begin_generation() (sampler.h).
// The prompt is not grammar text, so begin_generation() restarts the grammar from its start
// state; used without it (the stage alone, or a chain fed only generated tokens), every
// accepted token counts. A stage carried across a preemption keeps its state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sampling/grammar/grammar_program.h"
#include "sampling/grammar/grammar_matcher.h"
#include "sampling/sampler.h"

namespace strata::sampling {

class TokenVocab {
public:
    // One trie node in depth-first order; node 0 is the root (the empty prefix).
    struct Node {
        uint32_t skip;   // index of the first node after this node's subtree
        int32_t token;   // a token whose piece ends here, or -1 (more: same_piece_next)
        uint16_t depth;  // = length of the prefix
        uint8_t byte;    // last byte of the prefix
    };

    int32_t n_vocab() const { return int32_t(pieces_.size()); }
    const std::string& piece(int32_t id) const { return pieces_[size_t(id)]; }
    bool is_eog(int32_t id) const { return id >= 0 && id < n_vocab() && eog_[size_t(id)]; }
    const std::vector<int32_t>& eog_ids() const { return eog_ids_; }
    const std::vector<Node>& trie() const { return trie_; }
    int32_t same_piece_next(int32_t id) const { return same_piece_next_[size_t(id)]; }
    size_t max_depth() const { return max_depth_; }

private:
    friend std::shared_ptr<const TokenVocab> make_token_vocab(std::vector<std::string>, std::vector<int32_t>);
    std::vector<std::string> pieces_;
    std::vector<char> eog_;
    std::vector<int32_t> eog_ids_;
    std::vector<Node> trie_;
    std::vector<int32_t> same_piece_next_;  // tokens with identical pieces, chained
    size_t max_depth_ = 0;
};

// pieces[id]: the bytes token id produces (Tokenizer::token_to_piece(id, false)); empty for
// control tokens. eog_ids: end-of-generation ids (out-of-range ids are ignored).
std::shared_ptr<const TokenVocab> make_token_vocab(std::vector<std::string> pieces, std::vector<int32_t> eog_ids);

class GrammarSampler final : public Sampler {
public:
    GrammarSampler(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenVocab> vocab);

    const char* name() const override { return "grammar"; }
    void apply(Candidates& c) override;
    void accept(int32_t token) override;
    void begin_generation() override { reset(); }
    void reset() override;

    // The text so far is a complete sentence (EOG is allowed).
    bool is_complete() const;
    // No stack survives: a token the grammar does not allow was accepted.
    bool is_dead() const { return state_ == GrammarMatcher::kDead; }
    // Masks kept per grammar state (default 16); 0 turns the cache off (for measurements).
    void set_mask_cache_size(size_t n);

private:
    struct CachedMask {
        GrammarMatcher::State state;
        uint64_t last_use;
        bool any;
        std::vector<uint64_t> bits;
    };
    const CachedMask& mask_for(GrammarMatcher::State s);
    void fill_mask(GrammarMatcher::State s, CachedMask& out);

    std::shared_ptr<const TokenVocab> vocab_;
    GrammarMatcher matcher_;
    GrammarMatcher::State state_;
    std::vector<GrammarMatcher::State> walk_;  // state per trie depth during a walk
    std::vector<CachedMask> cache_;
    size_t cache_size_ = 16;
    uint64_t clock_ = 0;
    CachedMask scratch_;
};

std::unique_ptr<GrammarSampler> make_grammar_sampler(std::shared_ptr<const Grammar> grammar,
                                                     std::shared_ptr<const TokenVocab> vocab);

}  // namespace strata::sampling

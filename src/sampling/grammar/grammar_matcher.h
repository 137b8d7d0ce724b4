// Runs a Grammar (grammar.h) as a pushdown automaton over bytes, determinized lazily.
//
// A parse stack is a chain of frames; a frame is a position in the flat program (the next
// element to match) and its parent. Frames are interned, so equal stacks are equal ids and
// stacks share their tails. After expansion every live stack has a byte-set element on top;
// the empty stack (frame id 0) means "the input so far is a complete sentence".
//
// A state is the deduplicated set of live stacks, interned as a small integer, so identical
// sets (the inside of a JSON string, say) are one state. step(state, byte) is computed once
// and then cached in a 256-entry row per state: walking a token trie is then mostly table
// lookups. The tables only grow, so the owner calls compact() between tokens when
// over_budget() to rebuild them around the one state still in use.
//
// Not thread-safe: one matcher per sequence (the Grammar it reads is shared and immutable).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sampling/grammar/grammar_program.h"

namespace strata::sampling {

class GrammarMatcher {
public:
    using State = int32_t;
    static constexpr State kDead = 0;  // no stack survives

    explicit GrammarMatcher(std::shared_ptr<const Grammar> g);

    State initial() const { return initial_; }
    bool accepting(State s) const { return sets_[size_t(s)].accepting; }

    State step(State s, uint8_t b) {
        const State t = trans_[size_t(s) * 256 + b];
        return t >= 0 ? t : compute_step(s, b);
    }
    State step(State s, std::string_view bytes) {
        for (char c : bytes) {
            if (s == kDead) break;
            s = step(s, uint8_t(c));
        }
        return s;
    }
    // Bytes b with step(s, b) != kDead (cheap: read off the tops of s's stacks).
    Grammar::ByteSet first_bytes(State s) const { return sets_[size_t(s)].first; }

    size_t n_states() const { return sets_.size(); }
    size_t n_frames() const { return frames_.size(); }
    bool over_budget() const { return sets_.size() > kMaxStates || frames_.size() > kMaxFrames; }
    // Drops every cached state and frame except those of `keep`; returns keep's new id.
    // Ids of all other states become meaningless.
    State compact(State keep);

    const Grammar& grammar() const { return *g_; }

private:
    static constexpr size_t kMaxStates = 8192;      // 8 MiB of transition rows
    static constexpr size_t kMaxFrames = 1u << 18;   // a few tens of MiB with the index

    struct Frame {
        uint32_t pos;     // index into grammar elems
        uint32_t parent;  // frame id; 0 = bottom
    };
    struct StateInfo {
        std::vector<uint32_t> stacks;  // sorted frame ids; includes 0 when accepting
        bool accepting = false;
        Grammar::ByteSet first{};
    };
    struct VecHash {
        size_t operator()(const std::vector<uint32_t>& v) const noexcept;
    };

    State compute_step(State s, uint8_t b);
    void expand(uint32_t pos, uint32_t parent, std::vector<uint32_t>& out);
    uint32_t frame(uint32_t pos, uint32_t parent);
    State intern_state(std::vector<uint32_t>& stacks);  // sorts and dedups in place
    void reset_tables();

    std::shared_ptr<const Grammar> g_;
    std::vector<Frame> frames_;
    std::unordered_map<uint64_t, uint32_t> frame_ids_;
    std::vector<StateInfo> sets_;
    std::unordered_map<std::vector<uint32_t>, State, VecHash> set_ids_;
    std::vector<State> trans_;  // n_states x 256; -1 = not computed yet
    std::vector<uint32_t> scratch_;
    State initial_ = kDead;
};

}  // namespace strata::sampling

// The lazily determinized pushdown automaton of grammar_matcher.h.
//
// expand() brings a stack to a byte-set element on top: at a rule reference it pushes the
// continuation (unless the reference ends its alternative, in which case the parent is
// reused as is: this keeps right recursion such as x* from growing the stack) and expands
// every alternative of the rule; at the end of an alternative it pops. Left recursion is
// refused by the grammar compiler, so expansion always terminates.
#include "sampling/grammar/grammar_matcher.h"

#include <algorithm>

namespace strata::sampling {

size_t GrammarMatcher::VecHash::operator()(const std::vector<uint32_t>& v) const noexcept {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ v.size();
    for (uint32_t x : v) h = (h ^ x) * 0x100000001B3ull + (h >> 29);
    return size_t(h);
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> g) : g_(std::move(g)) { reset_tables(); }

void GrammarMatcher::reset_tables() {
    frames_.clear();
    frame_ids_.clear();
    sets_.clear();
    set_ids_.clear();
    trans_.clear();
    frames_.push_back({UINT32_MAX, 0});  // frame 0: the bottom (empty stack)
    std::vector<uint32_t> none;
    intern_state(none);  // state 0: dead
    std::vector<uint32_t> start;
    const auto [b, e] = g_->rule_alts(g_->root());
    for (uint32_t k = b; k < e; ++k) expand(g_->alt_starts()[k], 0, start);
    initial_ = intern_state(start);
}

uint32_t GrammarMatcher::frame(uint32_t pos, uint32_t parent) {
    const uint64_t key = (uint64_t(pos) << 32) | parent;
    auto [it, fresh] = frame_ids_.try_emplace(key, uint32_t(frames_.size()));
    if (fresh) frames_.push_back({pos, parent});
    return it->second;
}

void GrammarMatcher::expand(uint32_t pos, uint32_t parent, std::vector<uint32_t>& out) {
    const auto& elems = g_->elems();
    for (;;) {
        const Grammar::Elem e = elems[pos];
        if (e.op == Grammar::Op::kEnd) {
            if (parent == 0) {
                out.push_back(0);
                return;
            }
            pos = frames_[parent].pos;
            parent = frames_[parent].parent;
            continue;
        }
        if (e.op == Grammar::Op::kBytes) {
            out.push_back(frame(pos, parent));
            return;
        }
        const uint32_t cont = elems[pos + 1].op == Grammar::Op::kEnd ? parent : frame(pos + 1, parent);
        const auto [b, en] = g_->rule_alts(e.arg);
        for (uint32_t k = b; k < en; ++k) expand(g_->alt_starts()[k], cont, out);
        return;
    }
}

GrammarMatcher::State GrammarMatcher::intern_state(std::vector<uint32_t>& stacks) {
    std::sort(stacks.begin(), stacks.end());
    stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
    auto it = set_ids_.find(stacks);
    if (it != set_ids_.end()) return it->second;
    const auto id = State(sets_.size());
    StateInfo info;
    info.stacks = stacks;
    for (uint32_t f : stacks) {
        if (f == 0) {
            info.accepting = true;
            continue;
        }
        const auto& s = g_->byte_set(g_->elems()[frames_[f].pos].arg);
        for (int w = 0; w < 4; ++w) info.first[size_t(w)] |= s[size_t(w)];
    }
    sets_.push_back(std::move(info));
    set_ids_.emplace(stacks, id);
    trans_.resize(trans_.size() + 256, -1);
    // A state with no byte to go on has every row entry dead already.
    const auto& first = sets_.back().first;
    for (int b = 0; b < 256; ++b)
        if (!((first[size_t(b >> 6)] >> (b & 63)) & 1u)) trans_[size_t(id) * 256 + size_t(b)] = kDead;
    return id;
}

GrammarMatcher::State GrammarMatcher::compute_step(State s, uint8_t b) {
    scratch_.clear();
    const auto& elems = g_->elems();
    // expand() only adds frames; states are interned after the loop, so sets_[s] is stable.
    for (uint32_t f : sets_[size_t(s)].stacks) {
        if (f == 0) continue;
        const Frame fr = frames_[f];
        if (g_->byte_matches(elems[fr.pos].arg, b)) expand(fr.pos + 1, fr.parent, scratch_);
    }
    std::vector<uint32_t> next = scratch_;
    const State t = next.empty() ? kDead : intern_state(next);
    trans_[size_t(s) * 256 + b] = t;
    return t;
}

GrammarMatcher::State GrammarMatcher::compact(State keep) {
    // Save keep's stacks as explicit frame positions (top first), rebuild, re-intern.
    std::vector<std::vector<uint32_t>> paths;
    for (uint32_t f : sets_[size_t(keep)].stacks) {
        std::vector<uint32_t> path;
        for (uint32_t x = f; x != 0; x = frames_[x].parent) path.push_back(frames_[x].pos);
        paths.push_back(std::move(path));
    }
    if (keep == kDead) {
        reset_tables();
        return kDead;
    }
    reset_tables();
    std::vector<uint32_t> stacks;
    for (const auto& path : paths) {
        uint32_t f = 0;
        for (auto it = path.rbegin(); it != path.rend(); ++it) f = frame(*it, f);
        stacks.push_back(f);
    }
    return intern_state(stacks);
}

}  // namespace strata::sampling

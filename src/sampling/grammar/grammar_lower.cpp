// Parse tree -> flat Grammar program (grammar.h), plus the checks that need the whole
// grammar: duplicate and unknown rules, a missing root, and left recursion (which would make
// the matcher's expansion loop forever, so it is refused here).
//
// Helper rules: a group with several alternatives, x* (s ::= x s | ""), x{0,n} (a chain
// o_n ::= x o_{n-1} | "", so a bounded repetition stays unambiguous), and any class that
// reaches beyond ASCII (one alternative per UTF-8 byte-range sequence). Identical helpers are
// shared (same class, same repeated element).
#include <algorithm>
#include <map>
#include <unordered_map>

#include "sampling/grammar/grammar_ast.h"

namespace strata::sampling {

using gbnf::Node;
using gbnf::RuleAst;
using Elem = Grammar::Elem;
using Op = Grammar::Op;

class GrammarBuilder {
public:
    Result<std::shared_ptr<const Grammar>> build(const std::vector<RuleAst>& ast) {
        for (const RuleAst& r : ast) {
            if (ids_.count(r.name))
                return invalid_input("grammar: line {}: rule '{}' is defined twice", r.line, r.name);
            ids_[r.name] = new_rule(r.name, r.line);
        }
        auto root = ids_.find("root");
        if (root == ids_.end()) return invalid_input("grammar: no rule named 'root'");
        for (const RuleAst& r : ast) {
            const uint32_t id = ids_[r.name];
            for (const auto& seq : r.alts) {
                std::vector<Elem> alt;
                for (const Node& n : seq) STRATA_TRY(lower_item(n, id, alt));
                rules_[id].alts.push_back(std::move(alt));
            }
        }
        STRATA_TRY(check_left_recursion());
        auto g = std::make_shared<Grammar>();
        for (size_t r = 0; r < rules_.size(); ++r) {
            const uint32_t first = uint32_t(g->alt_starts_.size());
            for (const auto& alt : rules_[r].alts) {
                g->alt_starts_.push_back(uint32_t(g->elems_.size()));
                g->elems_.insert(g->elems_.end(), alt.begin(), alt.end());
                g->elems_.push_back({Op::kEnd, 0});
            }
            g->rule_alts_.emplace_back(first, uint32_t(g->alt_starts_.size()));
            g->rule_names_.push_back(rules_[r].name);
        }
        g->byte_sets_ = std::move(sets_);
        g->root_ = root->second;
        return std::shared_ptr<const Grammar>(std::move(g));
    }

private:
    struct Raw {
        std::string name;
        int line;
        uint32_t owner;  // the user rule a helper was made for (itself for user rules)
        std::vector<std::vector<Elem>> alts;
    };

    uint32_t new_rule(std::string name, int line, uint32_t owner = UINT32_MAX) {
        const auto id = uint32_t(rules_.size());
        rules_.push_back({std::move(name), line, owner == UINT32_MAX ? id : owner, {}});
        return id;
    }
    uint32_t new_helper(uint32_t owner) {
        const std::string name = fmt::format("{}~{}", rules_[owner].name, ++helper_count_);
        return new_rule(name, rules_[owner].line, owner);
    }

    Elem bytes_elem(const Grammar::ByteSet& s) {
        auto [it, fresh] = set_ids_.try_emplace(s, uint32_t(sets_.size()));
        if (fresh) sets_.push_back(s);
        return {Op::kBytes, it->second};
    }
    static void set_range(Grammar::ByteSet& s, uint32_t lo, uint32_t hi) {
        for (uint32_t b = lo; b <= hi; ++b) s[b >> 6] |= uint64_t(1) << (b & 63);
    }

    Status lower_item(const Node& n, uint32_t owner, std::vector<Elem>& out) {
        switch (n.kind) {
            case Node::Kind::kLiteral:
                for (char c : n.text) {
                    Grammar::ByteSet s{};
                    set_range(s, uint8_t(c), uint8_t(c));
                    out.push_back(bytes_elem(s));
                }
                return ok_status();
            case Node::Kind::kClass:
                out.push_back(class_elem(n, owner));
                return ok_status();
            case Node::Kind::kRef: {
                auto it = ids_.find(n.text);
                if (it == ids_.end())
                    return invalid_input("grammar: line {}: rule '{}': unknown rule '{}'", n.line,
                                         rules_[owner].name, n.text);
                out.push_back({Op::kRef, it->second});
                return ok_status();
            }
            case Node::Kind::kGroup: {
                if (n.alts.size() == 1) {
                    for (const Node& m : n.alts[0]) STRATA_TRY(lower_item(m, owner, out));
                    return ok_status();
                }
                const uint32_t r = new_helper(owner);
                for (const auto& seq : n.alts) {
                    std::vector<Elem> alt;
                    for (const Node& m : seq) STRATA_TRY(lower_item(m, owner, alt));
                    rules_[r].alts.push_back(std::move(alt));
                }
                out.push_back({Op::kRef, r});
                return ok_status();
            }
            case Node::Kind::kRepeat: {
                std::vector<Elem> unit;
                STRATA_TRY(lower_item(n.alts[0][0], owner, unit));
                if (unit.empty()) return ok_status();  // ""* and friends match nothing but ""
                if (unit.size() > 1) {
                    const uint32_t r = new_helper(owner);
                    rules_[r].alts.push_back(std::move(unit));
                    unit = {Elem{Op::kRef, r}};
                }
                const Elem x = unit[0];
                for (uint32_t k = 0; k < n.min; ++k) out.push_back(x);
                if (n.max == gbnf::kRepeatUnbounded) {
                    out.push_back({Op::kRef, star_rule(x, owner)});
                } else if (n.max > n.min) {
                    out.push_back({Op::kRef, optional_chain(x, n.max - n.min, owner)});
                }
                return ok_status();
            }
        }
        return ok_status();
    }

    static uint64_t elem_key(Elem e) { return (uint64_t(e.op) << 32) | e.arg; }

    // s ::= x s | ""
    uint32_t star_rule(Elem x, uint32_t owner) {
        auto it = star_memo_.find(elem_key(x));
        if (it != star_memo_.end()) return it->second;
        const uint32_t r = new_helper(owner);
        rules_[r].alts.push_back({x, Elem{Op::kRef, r}});
        rules_[r].alts.emplace_back();
        star_memo_[elem_key(x)] = r;
        return r;
    }

    // o_n ::= x o_{n-1} | "" with o_1 ::= x | ""; returns o_n.
    uint32_t optional_chain(Elem x, uint32_t n, uint32_t owner) {
        std::vector<uint32_t>& chain = opt_memo_[elem_key(x)];
        while (chain.size() < n) {
            const uint32_t r = new_helper(owner);
            if (chain.empty()) {
                rules_[r].alts.push_back({x});
            } else {
                rules_[r].alts.push_back({x, Elem{Op::kRef, chain.back()}});
            }
            rules_[r].alts.emplace_back();
            chain.push_back(r);
        }
        return chain[n - 1];
    }

    Elem class_elem(const Node& n, uint32_t owner) {
        // Normalize to sorted disjoint ranges, complement if negated, drop surrogates.
        auto ranges = n.ranges;
        std::sort(ranges.begin(), ranges.end());
        std::vector<std::pair<uint32_t, uint32_t>> merged;
        for (auto r : ranges) {
            if (!merged.empty() && r.first <= merged.back().second + 1)
                merged.back().second = std::max(merged.back().second, r.second);
            else
                merged.push_back(r);
        }
        if (n.negated) {
            std::vector<std::pair<uint32_t, uint32_t>> comp;
            uint32_t next = 0;
            for (auto r : merged) {
                if (r.first > next) comp.emplace_back(next, r.first - 1);
                next = r.second + 1;
            }
            if (next <= gbnf::kMaxCodePoint) comp.emplace_back(next, gbnf::kMaxCodePoint);
            merged = std::move(comp);
        }
        auto memo = class_memo_.find(merged);
        if (memo != class_memo_.end()) return memo->second;

        // Sequences with the same continuation bytes share one alternative whose first
        // element is the union of their lead bytes.
        std::map<gbnf::ByteRangeSeq, Grammar::ByteSet> by_tail;
        for (const auto& seq : gbnf::utf8_sequences(merged)) {
            gbnf::ByteRangeSeq tail(seq.begin() + 1, seq.end());
            set_range(by_tail[tail], seq[0].first, seq[0].second);
        }
        std::vector<std::vector<Elem>> alts;
        for (const auto& [tail, lead] : by_tail) {
            std::vector<Elem> alt{bytes_elem(lead)};
            for (auto [lo, hi] : tail) {
                Grammar::ByteSet s{};
                set_range(s, lo, hi);
                alt.push_back(bytes_elem(s));
            }
            alts.push_back(std::move(alt));
        }
        Elem e;
        if (alts.size() == 1 && alts[0].size() == 1) {
            e = alts[0][0];
        } else {
            const uint32_t r = new_helper(owner);
            rules_[r].alts = std::move(alts);  // may be empty: a class that matches nothing
            e = {Op::kRef, r};
        }
        class_memo_[merged] = e;
        return e;
    }

    // A rule that can reach itself without consuming a byte would send the matcher's
    // expansion into an endless loop.
    Status check_left_recursion() {
        const size_t n = rules_.size();
        std::vector<char> nullable(n, 0);
        auto elem_nullable = [&](Elem e) { return e.op == Op::kRef && nullable[e.arg]; };
        for (bool changed = true; changed;) {
            changed = false;
            for (size_t r = 0; r < n; ++r) {
                if (nullable[r]) continue;
                for (const auto& alt : rules_[r].alts) {
                    if (std::all_of(alt.begin(), alt.end(), elem_nullable)) {
                        nullable[r] = 1;
                        changed = true;
                        break;
                    }
                }
            }
        }
        // Edges r -> s where s can be expanded before r consumes anything.
        std::vector<std::vector<uint32_t>> left(n);
        for (size_t r = 0; r < n; ++r) {
            for (const auto& alt : rules_[r].alts) {
                for (Elem e : alt) {
                    if (e.op == Op::kRef) left[r].push_back(e.arg);
                    if (!elem_nullable(e)) break;
                }
            }
        }
        std::vector<char> color(n, 0);  // 0 new, 1 on the DFS path, 2 done
        std::vector<std::pair<uint32_t, size_t>> stack;
        for (uint32_t s = 0; s < n; ++s) {
            if (color[s]) continue;
            stack.push_back({s, 0});
            color[s] = 1;
            while (!stack.empty()) {
                auto& [r, k] = stack.back();
                if (k == left[r].size()) {
                    color[r] = 2;
                    stack.pop_back();
                    continue;
                }
                const uint32_t t = left[r][k++];
                if (color[t] == 1) {
                    // The cycle is the DFS path from t back to t, shown by user rule names.
                    std::vector<std::string> cycle;
                    bool on = false;
                    for (const auto& [x, unused] : stack) {
                        on = on || x == t;
                        const std::string& name = rules_[rules_[x].owner].name;
                        if (on && (cycle.empty() || cycle.back() != name)) cycle.push_back(name);
                    }
                    const Raw& culprit = rules_[rules_[t].owner];
                    std::string path;
                    for (const auto& c : cycle) path += c + " -> ";
                    path += culprit.name;
                    return invalid_input(
                        "grammar: line {}: rule '{}': left recursion ({}): the rule can reach itself "
                        "without matching a byte (a repetition of something that can match nothing "
                        "does this too)",
                        culprit.line, culprit.name, path);
                }
                if (color[t] == 0) {
                    color[t] = 1;
                    stack.push_back({t, 0});
                }
            }
        }
        return ok_status();
    }

    std::vector<Raw> rules_;
    std::unordered_map<std::string, uint32_t> ids_;
    std::vector<Grammar::ByteSet> sets_;
    std::map<Grammar::ByteSet, uint32_t> set_ids_;
    std::map<std::vector<std::pair<uint32_t, uint32_t>>, Elem> class_memo_;
    std::unordered_map<uint64_t, uint32_t> star_memo_;
    std::unordered_map<uint64_t, std::vector<uint32_t>> opt_memo_;
    int helper_count_ = 0;
};

namespace gbnf {

namespace {

// Splits [lo, hi] (all code points of one encoded length n) until the encodings of lo and hi
// bound a cross product of byte ranges, then emits that product.
void split_range(uint32_t lo, uint32_t hi, int n, std::vector<ByteRangeSeq>& out) {
    for (int i = 1; i < n; ++i) {
        const uint32_t m = (uint32_t(1) << (6 * i)) - 1;  // the low i continuation bytes
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0) {
                split_range(lo, lo | m, n, out);
                split_range((lo | m) + 1, hi, n, out);
                return;
            }
            if ((hi & m) != m) {
                split_range(lo, (hi & ~m) - 1, n, out);
                split_range(hi & ~m, hi, n, out);
                return;
            }
        }
    }
    std::string a, b;
    append_utf8(a, lo);
    append_utf8(b, hi);
    ByteRangeSeq seq;
    for (size_t k = 0; k < a.size(); ++k) seq.emplace_back(uint8_t(a[k]), uint8_t(b[k]));
    out.push_back(std::move(seq));
}

}  // namespace

std::vector<ByteRangeSeq> utf8_sequences(const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
    static constexpr uint32_t kLenEnd[4] = {0x7F, 0x7FF, 0xFFFF, kMaxCodePoint};
    std::vector<ByteRangeSeq> out;
    for (auto [lo0, hi0] : ranges) {
        // Cut out the surrogates, then split by encoded length.
        std::vector<std::pair<uint32_t, uint32_t>> parts;
        if (hi0 < 0xD800 || lo0 > 0xDFFF) {
            parts.emplace_back(lo0, hi0);
        } else {
            if (lo0 < 0xD800) parts.emplace_back(lo0, 0xD7FF);
            if (hi0 > 0xDFFF) parts.emplace_back(0xE000, hi0);
        }
        for (auto [lo, hi] : parts) {
            uint32_t start = 0;
            for (int n = 1; n <= 4; ++n) {
                const uint32_t end = kLenEnd[n - 1];
                const uint32_t a = std::max(lo, start), b = std::min(hi, end);
                if (a <= b) split_range(a, b, n, out);
                start = end + 1;
            }
        }
    }
    return out;
}

Result<std::shared_ptr<const Grammar>> lower(const std::vector<RuleAst>& rules) {
    return GrammarBuilder().build(rules);
}

}  // namespace gbnf

}  // namespace strata::sampling
